"""A synthetic spatial-transcriptomics dataset with known ground truth.

(Over ~350 lines: one generative model whose grid, expression and image steps share
the latent mixture, so they are read together.)

The generative story, per sample:

1. Spots lie on a Visium-like hex grid (array row ``r``, col ``2k + r % 2``) or a
   legacy-ST square grid.
2. ``K`` latent cell types have spatially smooth proportions: one low-frequency random
   Fourier field per type over the tissue, softmaxed across types (the *mixture*).
3. Expression: each type has a gene program (marker genes up-regulated in that type,
   background genes with small type effects). A spot's mean is ``mixture @ programs``
   times a log-normal library size; some genes follow an independent smooth field that
   the image cannot see, some are pure noise. Counts are negative-binomial with extra
   dropout; the library scale is calibrated so about 80% of entries are zero.
4. Image: each spot's patch is rendered from its mixture: a pink eosin background with
   stroma texture tinted by type, and hematoxylin nuclei (discs/ellipses) whose number,
   size, elongation and colour depend on the type they belong to, placed independently
   per spot, plus a per-spot tint, pixel noise and a per-sample stain shift (batch
   effect). Types differ mostly in morphology, little in mean colour, so a frozen
   encoder that mostly pools colour leaves room for a learned one.

Image and expression share signal only through the mixture. Ground truth is stored in
the h5ad: ``obsm["mixture"]`` (N, K), ``uns["type_programs"]`` (K, G),
``var["gene_kind"]`` and ``var["marker_of"]``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from rankbygene import keys
from rankbygene.data.dataset import STDataset, read_dataset
from rankbygene.data.writer import write_sample

logger = logging.getLogger(__name__)

__all__ = ["OBSM_MIXTURE", "UNS_PROGRAMS", "make_synthetic_dataset"]

OBSM_MIXTURE = "mixture"  # (N, K) ground-truth type proportions
UNS_PROGRAMS = "type_programs"  # (K, G) per-type expression profiles (rows sum to 1)
UNS_SYNTHETIC = "synthetic"  # generator parameters

# Physical layout (µm). The full-resolution "slide" has 0.5 µm/px, the HEST convention.
_FULLRES_UM_PER_PX = 0.5
_WINDOW_UM = 112.0  # patch window side (docs/method.md)
_GRIDS = {
    # grid: (technology, spot pitch µm, spot diameter µm)
    "hex": ("Visium", 100.0, 55.0),
    "square": ("Spatial Transcriptomics", 200.0, 100.0),
}
_TARGET_ZERO_FRACTION = 0.8
_NB_SHAPE = 2.0  # negative-binomial shape r (overdispersion 1/r)
_DROPOUT = 0.1  # extra zero-inflation on top of the NB zeros
_MAX_RENDER_PIXELS = 1_000_000  # pixels per rendering chunk (bounds float64 temporaries)


@dataclass(frozen=True)
class _TypeLook:
    """Per-type image appearance (rows indexed by type).

    Shape:
        radius, density, aspect: (K,); nucleus_rgb, background_rgb: (K, 3); fibres: (K,).
    """

    radius: np.ndarray  # nucleus radius in px at 64 px patches
    density: np.ndarray  # expected nuclei per 64x64 px patch of a pure spot
    aspect: np.ndarray  # nucleus elongation (major/minor axis)
    nucleus_rgb: np.ndarray
    background_rgb: np.ndarray
    fibres: np.ndarray  # stroma texture amplitude


def _type_looks(n_types: int) -> _TypeLook:
    """Deterministic per-type looks whose differences are mostly morphological.

    Types differ clearly in nucleus size, number and elongation, but only mildly in mean
    colour: the nuclear coverage of a patch varies little between types (small nuclei
    come in large numbers) and the colours are close. So a patch's average colour
    carries little type signal (a frozen random encoder that pools colour does poorly)
    while a CNN can learn the morphology. Golden-ratio steps decorrelate the traits.
    """
    k = np.arange(n_types, dtype=np.float64)
    lin = k / max(n_types - 1, 1)
    t_cover = (k * 0.6180339887) % 1.0
    t_colour = (k * 0.3819660113 + 0.5) % 1.0
    t_stroma = (k * 0.7548776662 + 0.25) % 1.0
    radius = 2.0 + 3.5 * lin
    coverage = 0.16 + 0.08 * t_cover  # fraction of a pure patch covered by nuclei
    dark = np.array([55.0, 32.0, 115.0])
    pale = np.array([105.0, 65.0, 155.0])
    pale_bg = np.array([240.0, 200.0, 220.0])
    deep_bg = np.array([232.0, 178.0, 205.0])
    return _TypeLook(
        radius=radius,
        density=coverage * 64.0 * 64.0 / (np.pi * radius**2),
        aspect=1.0 + 1.0 * t_stroma,
        nucleus_rgb=dark + (pale - dark) * t_colour[:, None],
        background_rgb=pale_bg + (deep_bg - pale_bg) * t_stroma[:, None],
        fibres=0.03 + 0.10 * t_stroma,
    )


def _grid(n_spots: int, grid: str) -> tuple[np.ndarray, np.ndarray]:
    """Array and pixel coordinates of ``n_spots`` spots on a roughly square patch of grid.

    Returns:
        (array_rc, xy): array row/col (N, 2) int64 and full-res pixel x/y (N, 2) float64.
    """
    _, pitch_um, _ = _GRIDS[grid]
    pitch_px = pitch_um / _FULLRES_UM_PER_PX
    per_row = int(np.ceil(np.sqrt(n_spots)))
    n_rows = int(np.ceil(n_spots / per_row))
    r, k = np.divmod(np.arange(n_rows * per_row)[:n_spots], per_row)
    if grid == "hex":
        col = 2 * k + r % 2
        x = col * pitch_px / 2.0
        y = r * pitch_px * np.sqrt(3.0) / 2.0
    else:
        col = k
        x = col * pitch_px
        y = r * pitch_px
    margin = pitch_px  # keep patch windows inside a notional slide
    array_rc = np.stack([r, col], axis=1).astype(np.int64)
    xy = np.stack([x + margin, y + margin], axis=1)
    return array_rc, xy


def _smooth_fields(
    rng: np.random.Generator, unit_xy: np.ndarray, n_fields: int, n_waves: int = 8
) -> np.ndarray:
    """Low-frequency random Fourier fields (about 1.5 cycles across the tissue).

    Shape:
        unit_xy: (N, 2) in [0, 1]; returns (N, n_fields), roughly unit variance.
    """
    freq = rng.normal(0.0, 2.0 * np.pi * 1.2, size=(n_fields, n_waves, 2))
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(n_fields, n_waves))
    proj = np.einsum("nd,fwd->nfw", unit_xy, freq) + phase[None]
    return np.sqrt(2.0 / n_waves) * np.cos(proj).sum(axis=2)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class _Genes:
    names: list[str]
    kind: np.ndarray  # (G,) str: marker / background / smooth / noise
    marker_of: np.ndarray  # (G,) int, -1 for non-markers
    programs: np.ndarray  # (K, G) rows sum to 1
    smooth_weight: np.ndarray  # (G, 2) loadings on two image-invisible smooth fields


def _make_genes(rng: np.random.Generator, n_genes: int, n_types: int) -> _Genes:
    n_markers = max(1, n_genes // (5 * n_types))
    n_smooth = max(1, n_genes // 10)
    n_noise = max(1, n_genes // 10)
    n_background = n_genes - n_types * n_markers - n_smooth - n_noise
    if n_background < 0:
        raise ValueError(
            f"n_genes={n_genes} is too small for n_types={n_types}: need at least "
            f"{n_types * n_markers + n_smooth + n_noise} genes"
        )
    marker_of = np.concatenate(
        [np.repeat(np.arange(n_types), n_markers), np.full(n_genes - n_types * n_markers, -1)]
    )
    kind = np.array(
        ["marker"] * (n_types * n_markers)
        + ["smooth"] * n_smooth
        + ["noise"] * n_noise
        + ["background"] * n_background
    )
    names = (
        [f"TYPE{t}_M{j + 1:02d}" for t in range(n_types) for j in range(n_markers)]
        + [f"SMOOTH_{j + 1:02d}" for j in range(n_smooth)]
        + [f"NOISE_{j + 1:02d}" for j in range(n_noise)]
        + [f"GENE{j + 1:04d}" for j in range(n_background)]
    )
    base = rng.lognormal(mean=0.0, sigma=1.0, size=n_genes)
    base[kind == "marker"] *= 2.0  # markers are among the better-expressed genes
    lfc = rng.normal(0.0, 0.3, size=(n_types, n_genes))
    lfc[:, kind != "background"] = 0.0
    is_marker = marker_of >= 0
    lfc[marker_of[is_marker], np.flatnonzero(is_marker)] = 2.2
    programs = base[None, :] * np.exp(lfc)
    programs /= programs.sum(axis=1, keepdims=True)
    smooth_weight = np.zeros((n_genes, 2))
    smooth_idx = np.flatnonzero(kind == "smooth")
    smooth_weight[smooth_idx, smooth_idx % 2] = rng.uniform(0.7, 1.2, size=smooth_idx.size)
    return _Genes(names, kind, marker_of, programs, smooth_weight)


def _calibrate_scale(rel_mean: np.ndarray) -> float:
    """Library scale s such that the expected zero fraction of NB(s * rel_mean) is ~80%.

    Bisection in log space on E[zero] = d + (1 - d) * (r / (r + mu))^r, which falls
    monotonically as s grows.
    """
    target = (_TARGET_ZERO_FRACTION - _DROPOUT) / (1.0 - _DROPOUT)
    lo, hi = np.log(1e-3), np.log(1e7)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        mu = np.exp(mid) * rel_mean
        zero = np.mean((_NB_SHAPE / (_NB_SHAPE + mu)) ** _NB_SHAPE)
        lo, hi = (mid, hi) if zero > target else (lo, mid)
    return float(np.exp(0.5 * (lo + hi)))


def _simulate_counts(
    rng: np.random.Generator, mixture: np.ndarray, genes: _Genes, hidden: np.ndarray
) -> np.ndarray:
    """Negative-binomial counts with dropout.

    Shape:
        mixture: (N, K); hidden: (N, 2) image-invisible smooth fields; returns (N, G) float32.
    """
    profile = mixture @ genes.programs  # (N, G), rows sum to 1
    profile = profile * np.exp(hidden @ genes.smooth_weight.T)
    lib = rng.lognormal(0.0, 0.35, size=(mixture.shape[0], 1))
    rel = profile * lib
    mu = _calibrate_scale(rel) * rel * rng.lognormal(0.0, 0.15)  # sample-level depth shift
    lam = rng.gamma(_NB_SHAPE, mu / _NB_SHAPE)  # gamma-Poisson = negative binomial
    counts = rng.poisson(lam)
    counts[rng.random(counts.shape) < _DROPOUT] = 0
    return counts.astype(np.float32)


def _draw_nuclei(
    rng: np.random.Generator, mixture: np.ndarray, look: _TypeLook, patch_px: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise all nuclei of a few spots, each in a small window around its centre.

    Every nucleus is an ellipse with a soft one-pixel edge. All nuclei of all spots are
    drawn at once: alpha is evaluated on a (T, w, w) stack of local windows and
    accumulated into the patches with ``np.bincount`` (cost ~ nuclei x window, not
    nuclei x patch area, so large patches stay cheap).

    Shape:
        mixture: (B, K); returns coverage (B, P, P) in [0, 1] and colour (B, P, P, 3).
    """
    b, k = mixture.shape
    scale = patch_px / 64.0
    n_per = rng.poisson(mixture * look.density[None, :] * scale**2)  # (B, K)
    spot_of = np.repeat(np.repeat(np.arange(b), k), n_per.ravel())  # (T,)
    type_of = np.repeat(np.tile(np.arange(k), b), n_per.ravel())
    t = spot_of.size
    cx = rng.uniform(-2.0, patch_px + 2.0, size=t)
    cy = rng.uniform(-2.0, patch_px + 2.0, size=t)
    radius = look.radius[type_of] * scale * rng.lognormal(0.0, 0.15, size=t)
    aspect = look.aspect[type_of] * rng.lognormal(0.0, 0.1, size=t)
    theta = rng.uniform(0.0, np.pi, size=t)
    colour = look.nucleus_rgb[type_of] * rng.lognormal(0.0, 0.08, size=(t, 1))  # (T, 3)
    major = radius * np.sqrt(aspect)
    minor = radius / np.sqrt(aspect)

    n_pix = b * patch_px * patch_px
    cover = np.zeros(n_pix)
    rgb = np.zeros((n_pix, 3))
    # nuclei grouped by window size, so each is drawn in a window that just fits it
    # (a loop over a few dozen sizes, not over spots or nuclei)
    halves = np.ceil(major).astype(np.int64) + 2
    for half in np.unique(halves):
        sel = np.flatnonzero(halves == half)
        offsets = np.arange(-half, half + 1)
        px = np.floor(cx[sel]).astype(np.int64)[:, None] + offsets[None, :]  # (T, w)
        py = np.floor(cy[sel]).astype(np.int64)[:, None] + offsets[None, :]
        dx = (px + 0.5 - cx[sel, None]).astype(np.float32)[:, None, :]  # (T, 1, w)
        dy = (py + 0.5 - cy[sel, None]).astype(np.float32)[:, :, None]  # (T, w, 1)
        cos = np.cos(theta[sel]).astype(np.float32)[:, None, None]
        sin = np.sin(theta[sel]).astype(np.float32)[:, None, None]
        u = (dx * cos + dy * sin) / major[sel, None, None].astype(np.float32)
        v = (dy * cos - dx * sin) / minor[sel, None, None].astype(np.float32)
        edge = minor[sel, None, None].astype(np.float32)
        alpha = np.clip((1.0 - np.sqrt(u * u + v * v)) * edge + 0.5, 0.0, 1.0)
        inside = ((px >= 0) & (px < patch_px))[:, None, :] & ((py >= 0) & (py < patch_px))[
            :, :, None
        ]
        keep = inside & (alpha > 0)
        flat = (spot_of[sel, None, None] * patch_px + py[:, :, None]) * patch_px + px[:, None, :]
        flat, weight = flat[keep], alpha[keep]
        owner = np.broadcast_to(np.arange(sel.size)[:, None, None], alpha.shape)[keep]
        cover += np.bincount(flat, weights=weight, minlength=n_pix)
        for c in range(3):
            rgb[:, c] += np.bincount(flat, weights=weight * colour[sel, c][owner], minlength=n_pix)
    # overlapping nuclei blend by coverage; the pixel itself is at most fully covered
    rgb /= np.maximum(cover, 1e-6)[:, None]
    shape = (b, patch_px, patch_px)
    return np.clip(cover, 0.0, 1.0).reshape(shape), rgb.reshape((*shape, 3))


def _render_chunk(
    rng: np.random.Generator, mixture: np.ndarray, look: _TypeLook, patch_px: int
) -> np.ndarray:
    """Render the patches of a few spots: stroma background, nuclei, chromatin, noise.

    Shape:
        mixture: (B, K); returns (B, P, P, 3) float32 in [0, 255]-ish (before stain shift).
    """
    b = mixture.shape[0]
    scale = patch_px / 64.0
    a, colour = _draw_nuclei(rng, mixture, look, patch_px)
    chromatin = 1.0 + 0.12 * rng.standard_normal((b, patch_px, patch_px, 1))

    # stroma: a few oriented sinusoids (fibres) whose strength follows the mixture
    grid = np.arange(patch_px, dtype=np.float64) + 0.5
    n_waves = 3
    f = rng.uniform(0.08, 0.25, size=(b, n_waves)) / scale
    phi = rng.uniform(0.0, np.pi, size=(b, n_waves))
    off = rng.uniform(0.0, 2.0 * np.pi, size=(b, n_waves))
    proj = (
        grid[None, None, None, :] * np.cos(phi)[..., None, None]
        + grid[None, None, :, None] * np.sin(phi)[..., None, None]
    )
    texture = np.sin(2.0 * np.pi * f[..., None, None] * proj + off[..., None, None]).mean(axis=1)
    amp = mixture @ look.fibres  # (B,)
    bg = mixture @ look.background_rgb + rng.normal(0.0, 6.0, size=(b, 3))  # per-spot tint
    bg = bg[:, None, None, :]  # (B,1,1,3)
    bg = bg * (1.0 - amp[:, None, None, None] * (1.0 + texture[..., None]))

    img = bg * (1.0 - a[..., None]) + colour * chromatin * a[..., None]
    img += rng.normal(0.0, 7.0, size=img.shape)
    return img.astype(np.float32)


def _render_patches(
    rng: np.random.Generator, mixture: np.ndarray, look: _TypeLook, patch_px: int
) -> np.ndarray:
    """Render all patches in memory-bounded chunks of spots.

    Shape:
        mixture: (N, K); returns (N, P, P, 3) float32.
    """
    n = mixture.shape[0]
    chunk = max(1, _MAX_RENDER_PIXELS // (patch_px * patch_px))
    out = np.empty((n, patch_px, patch_px, 3), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        out[start:stop] = _render_chunk(rng, mixture[start:stop], look, patch_px)
    return out


def _stain_shift(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Per-sample colour gain/bias (the batch effect), then quantise to uint8.

    Shape:
        img: (N, P, P, 3) float; returns the same shape, uint8.
    """
    # Slides stained and scanned on different days differ by up to ~15 % per channel
    # (stain concentration, scanner white balance); a model must not read the patient
    # from the colour. Milder shifts made colour-only features look better than real.
    gain = rng.uniform(0.85, 1.15, size=3)
    bias = rng.normal(0.0, 6.0, size=3)
    return np.clip(img * gain + bias, 0.0, 255.0).round().astype(np.uint8)


def make_synthetic_dataset(
    out: str | Path,
    n_samples: int = 4,
    n_spots: int = 300,
    n_genes: int = 200,
    patch_px: int = 64,
    n_types: int = 4,
    n_patients: int | None = None,
    grid: str = "hex",
    seed: int = 0,
    *,
    overwrite: bool = False,
) -> STDataset:
    """Generate a synthetic dataset in the HEST layout and open it.

    Args:
        out: output dataset directory.
        n_samples: number of samples (ids ``SYN00``, ``SYN01``, ...).
        n_spots: spots per sample.
        n_genes: genes (markers ``TYPEk_Mjj``, ``SMOOTH_jj``, ``NOISE_jj``, ``GENEjjjj``).
        patch_px: side of the rendered patches in pixels.
        n_types: number of latent cell types.
        n_patients: patients (sample ``s`` belongs to patient ``s % n_patients``);
            default one patient per sample, so leave-one-patient-out works.
        grid: ``"hex"`` (Visium-like) or ``"square"`` (legacy ST).
        seed: random seed; the output is a deterministic function of all arguments.
        overwrite: replace samples that already exist in ``out``.

    Returns:
        The dataset, read back from ``out``.
    """
    if grid not in _GRIDS:
        raise ValueError(f"grid must be one of {sorted(_GRIDS)}, got {grid!r}")
    for name, value in (
        ("n_samples", n_samples),
        ("n_spots", n_spots),
        ("n_types", n_types),
        ("patch_px", patch_px),
    ):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    n_patients = n_samples if n_patients is None else n_patients
    if not 1 <= n_patients <= n_samples:
        raise ValueError(f"n_patients must be in [1, n_samples={n_samples}], got {n_patients}")

    # anndata and pandas take about a second to import, so `import rankbygene.data`
    # leaves them to the functions that build or read AnnData objects.
    import anndata as ad
    import pandas as pd

    root = Path(out)
    seeds = np.random.SeedSequence(seed)
    shared_seed, *sample_seeds = seeds.spawn(n_samples + 1)
    genes = _make_genes(np.random.default_rng(shared_seed), n_genes, n_types)
    look = _type_looks(n_types)
    technology, pitch_um, diameter_um = _GRIDS[grid]
    array_rc, xy = _grid(n_spots, grid)
    unit_xy = (xy - xy.min(axis=0)) / max(float(np.ptp(xy, axis=0).max()), 1.0)
    window_px = round(_WINDOW_UM / _FULLRES_UM_PER_PX)

    for s in tqdm(range(n_samples), desc="synthetic samples", leave=False):
        rng = np.random.default_rng(sample_seeds[s])
        sample_id = f"SYN{s:02d}"
        mixture = _softmax(3.0 * _smooth_fields(rng, unit_xy, n_types))
        hidden = _smooth_fields(rng, unit_xy, 2)
        counts = _simulate_counts(rng, mixture, genes, hidden)
        img = _stain_shift(rng, _render_patches(rng, mixture, look, patch_px))

        barcodes = np.array([f"{sample_id}_{i:05d}" for i in range(n_spots)])
        obs = pd.DataFrame(
            {
                keys.OBS_IN_TISSUE: np.ones(n_spots, dtype=np.int64),
                keys.OBS_ARRAY_ROW: array_rc[:, 0],
                keys.OBS_ARRAY_COL: array_rc[:, 1],
                keys.OBS_PXL_ROW: xy[:, 1],
                keys.OBS_PXL_COL: xy[:, 0],
            },
            index=pd.Index(barcodes),
        )
        var = pd.DataFrame(
            {"gene_kind": pd.Categorical(genes.kind), "marker_of": genes.marker_of},
            index=pd.Index(genes.names),
        )
        adata = ad.AnnData(X=sp.csr_matrix(counts), obs=obs, var=var)
        adata.obsm[keys.OBSM_SPATIAL] = xy.copy()
        adata.obsm[OBSM_MIXTURE] = mixture.astype(np.float32)
        adata.uns[UNS_PROGRAMS] = genes.programs.astype(np.float32)
        adata.uns[UNS_SYNTHETIC] = {
            "seed": seed,
            "n_types": n_types,
            "grid": grid,
            "sample_index": s,
        }
        metadata = {
            keys.META_PATIENT: f"PAT{s % n_patients:02d}",
            keys.META_TECHNOLOGY: technology,
            keys.META_ORGAN: "Synthetic",
            keys.META_PIXEL_SIZE: _FULLRES_UM_PER_PX,
            keys.META_SPOT_DIAMETER: diameter_um,
            keys.META_SPOT_PITCH: pitch_um,
            "species": "synthetic",
            "synthetic_seed": seed,
        }
        write_sample(
            root,
            sample_id,
            adata,
            img,
            xy,
            barcodes,
            metadata,
            pixel_size_um=_WINDOW_UM / patch_px,
            patch_size_src=window_px,
            overwrite=overwrite,
        )
    logger.info("wrote %d synthetic samples to %s", n_samples, root)
    return read_dataset(root)
