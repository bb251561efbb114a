"""`loyalty demo`: the engine run over real purchase data (CDNOW) or a synthetic shop."""
