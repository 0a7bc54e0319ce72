"""Original features: pre-LayerNorm DINOv2 block outputs (cls token kept) in the spec's (N, C, T, D) layouts.

``N`` counts the test-time views of one image (cls 1, seg the sliding windows, dpt original + flip), ``C``
the blocks taken (1 for cls/seg: the last block; 4 for dpt: blocks 10/20/30/40 of 40), ``T`` the tokens
(cls first, then the patch grid row by row) and ``D`` the embedding width. The final LayerNorm is NOT
applied: the heads apply it (see :mod:`builders.heads`).
"""

from __future__ import annotations

import numpy as np
import torch

from builders.preprocess import Profile, check_image, cls_view, dpt_views, get_profile, seg_views

TASKS = ("cls", "seg", "dpt")
DEFAULT_MODEL = "facebook/dinov2-giant"


def dpt_layers(num_layers: int) -> tuple[int, ...]:
    """The 4 blocks (0-based) of the official linear4 depth head: evenly spaced, ending at the last.

    ViT-g/14 (40 blocks) -> (9, 19, 29, 39); ViT-S/B (12) -> (2, 5, 8, 11); the official ViT-L list
    (4, 11, 17, 23) is the one exception to the rule and is used for 24 blocks.
    """
    if num_layers == 24:
        return (4, 11, 17, 23)
    if num_layers < 4:
        raise ValueError(f"the dpt feature needs at least 4 blocks, the model has {num_layers}")
    return tuple(num_layers * k // 4 - 1 for k in range(1, 5))


def load_model(name_or_path: str = DEFAULT_MODEL, *, local_files_only: bool = True):
    """A ``transformers.Dinov2Model`` in eval mode from a Hub id (already cached) or a local folder.

    ``local_files_only`` defaults to True because builds must not download at run time; a missing
    model raises ``OSError`` from transformers naming the id.
    """
    from transformers import Dinov2Model

    return Dinov2Model.from_pretrained(name_or_path, local_files_only=local_files_only).eval()


def _blocks(model, views: torch.Tensor, layers: tuple[int, ...]) -> torch.Tensor:
    """(V, len(layers), T, D) pre-norm outputs of ``layers`` (0-based blocks) for a batch of views."""
    with torch.inference_mode():
        out = model(pixel_values=views, output_hidden_states=True)
    # hidden_states[0] is the embedding output; block i's output is hidden_states[i + 1].
    hs = out.hidden_states
    return torch.stack([hs[i + 1] for i in layers], dim=1)


def extract(
    model,
    image: np.ndarray,
    task: str,
    *,
    profile: Profile | str | None = None,
    name: str = "image",
) -> np.ndarray:
    """The original feature of ``image`` for ``task`` as a float32 (N, C, T, D) array.

    Parameters
    ----------
    model:
        a ``transformers.Dinov2Model`` (eval mode; any size with a patch size of 14 or other).
    image:
        RGB uint8 array (H, W, 3).
    task:
        ``cls`` | ``seg`` | ``dpt``.
    profile:
        preprocessing sizes, ``paper`` (default: Resize 256/Crop 224, 512-px seg windows, full-size dpt)
        or ``mini`` (112 px views) or a :class:`builders.preprocess.Profile`.
    name:
        used in error messages.

    Returns
    -------
    np.ndarray
        cls (1, 1, 257, D) and seg (windows, 1, 1370, D) in the paper profile; dpt (2, 4, T, D) with
        T = padded patch grid + 1 (1611 for 480 x 640).
    """
    if task not in TASKS:
        raise ValueError(f"{name}: unknown task {task!r}; expected one of {TASKS}")
    image = check_image(image, name)
    prof = get_profile(profile)
    patch = int(model.config.patch_size)
    last = model.config.num_hidden_layers - 1
    if task == "cls":
        feat = _blocks(model, cls_view(image, prof), (last,))
    elif task == "seg":
        views, _ = seg_views(image, prof, patch)
        feat = _blocks(model, views, (last,))
    else:
        feat = _blocks(model, dpt_views(image, prof, patch), dpt_layers(model.config.num_hidden_layers))
    return np.ascontiguousarray(feat.numpy(), dtype=np.float32)
