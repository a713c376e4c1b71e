"""The cluster edge: engine families and capabilities (``engines``), which failures are transient and
how they read (``failures``), the retry helper (``retry``), detection from ``GET /`` (``detect``) and
client creation (``client``). Imports point down in that order."""
