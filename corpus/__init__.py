"""corpus: turn an organisation's documents, Slack and meetings into context Claude can search."""

import os
from pathlib import Path

# Everything runs offline: no model hub, no telemetry, no hosted partitioning.
# setdefault keeps a user's explicit choice (e.g. HF_HUB_OFFLINE=0 to fetch a bigger model).
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "SCARF_NO_ANALYTICS": "true",
    "DO_NOT_TRACK": "true",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_key, _value)

__version__ = "0.1.0"
DEFAULT_CONFIG = Path("corpus.toml")  # here, light: the stdio front reads it without importing the config model
