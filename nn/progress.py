"""The training progress bar: a widget where Jupyter can show one, a line of text elsewhere."""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["progress_bar"]


def progress_bar(total: int, desc: str, unit: str) -> Any:
    """A tqdm bar counting to ``total``, or None when tqdm is not installed.

    ``tqdm.auto`` picks it: the notebook widget in a Jupyter kernel that has ipywidgets (the
    ``progress`` extra installs both), the text bar on stderr anywhere else. In a kernel without
    ipywidgets tqdm falls back to the text bar itself, but first warns "IProgress not found" in
    red: that fallback is the one wanted here, so its warning is not shown.
    """
    try:
        from tqdm.std import TqdmWarning

        with warnings.catch_warnings():
            # tqdm.auto decides once, when first imported: this is where it would warn
            warnings.filterwarnings("ignore", "IProgress not found", TqdmWarning)
            from tqdm.auto import tqdm
    except ImportError:  # the `progress` extra is not installed
        return None
    return tqdm(total=total, desc=desc, unit=unit)
