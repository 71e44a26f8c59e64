"""The flagship FinOps agent: its definition and offline script (``agent``), its tools
(``tools``) and the cloud inventory they act on (``inventory``)."""
