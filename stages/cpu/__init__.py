"""The CPU stage adapters and their libraries.

- adapters: :mod:`.screenplay` (script parser), :mod:`.llm_screenplay`, :mod:`.tts` (piper),
  :mod:`.image` (procedural art), :mod:`.talking_head`, :mod:`.mux` (PyAV fMP4), :mod:`.emulated`
  (a GPU stage emulated on the CPU from the reference profiles);
- libraries: :mod:`.speech` (text splitting, the piper engine, resampling), :mod:`.media` (PyAV
  encode / decode / fMP4 segments, also used by the client and the GPU adapters).
"""
