"""Make a torchvision whose C extension cannot load importable (pure-PyTorch parts only).

A torchvision wheel built for CUDA fails against a CPU build of torch with
"operator torchvision::nms does not exist", and transformers (hence
sentence-transformers and the Qwen3-VL processor) then fails to import.  Defining the
two operator schemas torchvision's Python side registers fakes for lets its
transforms import and work.  Nothing is done when torchvision imports normally or is
absent.
"""

from __future__ import annotations

import logging
import sys
import threading

log = logging.getLogger("vidx.torchcompat")
_lock = threading.Lock()
_lib: object | None = None  # keeps the op library alive
_done = False


def ensure_torchvision() -> str:
    """Returns "ok", "absent" or "shimmed"."""
    global _lib, _done
    with _lock:
        if _done:
            return "ok"
        try:
            import torchvision  # noqa: F401
        except ImportError:
            _done = True
            return "absent"
        except RuntimeError as exc:
            if "torchvision::nms" not in str(exc):
                raise
            for m in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
                del sys.modules[m]
            import torch

            lib = torch.library.Library("torchvision", "DEF")
            lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            lib.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
            _lib = lib
            import torchvision  # noqa: F401,F811

            log.debug("torchvision C ops unavailable (CUDA build on CPU torch); using its Python parts only")
            _done = True
            return "shimmed"
        _done = True
        return "ok"
