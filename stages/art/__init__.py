"""The CPU quality rung's procedural art: drawing primitives (:mod:`.drawing`), the studio
(:mod:`.studio`), speaker portraits (:mod:`.portrait`, layers blended by :mod:`.compositing`) and the
talking-head animator (:mod:`.head`, with :mod:`.motion` and :mod:`.subtitles`). Pure drawing on
numpy / Pillow: no bus, no tasks."""
