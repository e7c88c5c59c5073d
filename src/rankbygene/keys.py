"""On-disk names and keys, defined once (HEST-1k layout, CLAM/TRIDENT features, run dirs).

Every reader and writer in the package imports these names instead of spelling
strings, so a layout change is a one-line change.
"""

from __future__ import annotations

# --- dataset directory (HEST-1k layout) -------------------------------------------------
ST_DIR = "st"  # st/{id}.h5ad: raw counts in X
PATCHES_DIR = "patches"  # patches/{id}.h5
METADATA_DIR = "metadata"  # metadata/{id}.json
WSIS_DIR = "wsis"  # wsis/{id}.tif (optional)
ST_SUFFIX = ".h5ad"
PATCHES_SUFFIX = ".h5"
METADATA_SUFFIX = ".json"

# AnnData obs / obsm columns (HEST names)
OBS_ARRAY_ROW = "array_row"
OBS_ARRAY_COL = "array_col"
OBS_PXL_ROW = "pxl_row_in_fullres"
OBS_PXL_COL = "pxl_col_in_fullres"
OBS_IN_TISSUE = "in_tissue"
OBS_PATCH_PADDED = "patch_padded"  # True where the patch window left the image
OBSM_SPATIAL = "spatial"  # (N, 2) pixel coordinates, x (col) then y (row)

# patches/{id}.h5 datasets and attributes (HEST names)
H5_IMG = "img"  # (N, H, W, 3) uint8
H5_COORDS = "coords"  # (N, 2) int, x then y of the patch centre in full-res pixels
H5_BARCODE = "barcode"  # (N, 1) bytes, equal to obs_names
H5_ATTR_PIXEL_SIZE = "pixel_size"  # µm per pixel of the stored patches
H5_ATTR_PATCH_SIZE = "patch_size"  # stored patch side in pixels
H5_ATTR_PATCH_SIZE_SRC = "patch_size_src"  # window side in full-res pixels

# metadata/{id}.json keys (HEST names where HEST has them)
META_ID = "id"
META_PATIENT = "patient"
META_TECHNOLOGY = "st_technology"
META_ORGAN = "organ"
META_PIXEL_SIZE = "pixel_size_um_estimated"  # µm per full-res pixel
META_SPOT_DIAMETER = "spot_diameter"  # µm
META_SPOT_PITCH = "inter_spot_dist"  # µm between array neighbours

# --- features (CLAM/TRIDENT layout) -----------------------------------------------------
FEAT_FEATURES = "features"  # (N, D) float32
FEAT_COORDS = "coords"
FEAT_BARCODE = "barcode"
FEAT_ATTR_ENCODER = "encoder"
FEAT_ATTR_SOURCE_RUN = "source_run"
FEAT_ATTR_TRANSFORM = "transform"  # JSON string: input_size, mean, std
FEAT_ATTR_WEIGHTS_SHA256 = "weights_sha256"  # the encoder's weights (models.weights_sha256)
FEATURES_SUMMARY = "features.json"  # FEATS/features.json: encoder, samples, dims

# --- training run directory -------------------------------------------------------------
RUN_CONFIG = "config.yaml"
RUN_CHECKPOINTS = "checkpoints"
RUN_LAST_CKPT = "last.ckpt"
RUN_METRICS = "metrics.csv"
RUN_ENCODER_DIR = "encoder"
ENCODER_WEIGHTS = "model.safetensors"
ENCODER_CARD = "card.json"
RUN_GENES = "genes.txt"  # the panel the run was trained on, one gene per line
RUN_HEADS = "heads.safetensors"  # image head (+ gene encoder) tensors
RUN_HEADS_CARD = "heads.json"  # how to rebuild the heads; written last: the run finished
HISTOGENE_WEIGHTS = "histogene.safetensors"  # a HisToGene run's whole network
HISTOGENE_CARD = "histogene.json"  # its settings and panel size

# --- self-supervised pretraining run directory (checkpoints, metrics, encoder as above) ---
PRETRAIN_CONFIG = "pretrain.yaml"  # the resolved PretrainConfig; marks a pretraining run
PRETRAIN_TILES = "tiles.json"  # where its tiles came from: count per sample or slide id
COMPARISON_PRETRAIN = "pretrain"  # folds/{held-out}/pretrain/: the fold's pretraining run

# --- evaluation / demo outputs ----------------------------------------------------------
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
REPORT_HTML = "report.html"
EVAL_CONFIG = "config.yaml"  # the resolved evaluation settings
FIGURES_DIR = "figures"
SLIDE_PREDICTIONS_CSV = "predictions.csv"  # evaluate slides: one row per test slide and fold
PREDICTIONS_DIR = "predictions"  # predictions/{id}.h5ad, prediction in layers
LAYER_PREDICTED = "predicted"
LAYER_TARGET = "target"

# --- saved predictor (rankbygene fit) and its predictions (rankbygene predict) -----------
PREDICTOR_WEIGHTS = "weights.safetensors"  # every member model's tensors
PREDICTOR_GENES = "genes.txt"  # the genes it predicts, in column order
PREDICTOR_CARD = "predictor.json"  # what it is and its scale; written last: a complete save
PRED_SUMMARY = "predict.json"  # PRED/predict.json: the card, and one entry per slide/section
PRED_MAPS_DIR = "maps"  # PRED/maps/{id}_{gene}.png
PRED_GEOJSON_SUFFIX = ".geojson"  # PRED/{id}.geojson: one feature per tile (QuPath)
OBS_TILE_X0 = "tile_x0"  # predictions on tiles: level-0 top-left corner, px
OBS_TILE_Y0 = "tile_y0"
OBS_X_UM = "x_um"  # the tile or spot centre in µm from the image's top-left corner
OBS_Y_UM = "y_um"
UNS_RANKBYGENE = "rankbygene"  # uns["rankbygene"]: what produced the predictions

# --- multi-run layouts (demo, comparisons, experiments) ---------------------------------
COMPARISON_DATA = "data"  # the dataset the comparison made or imported
COMPARISON_INIT = "init"  # the shared initial encoder
COMPARISON_RUNS = "runs"  # runs/{variant}/
COMPARISON_FEATURES = "features"  # features/{variant}/
COMPARISON_EVAL = "eval"  # eval/{panel}/{row}/
EXPERIMENT_FOLDS = "folds"  # folds/{held-out ids}/ (one comparison per outer fold)
JOB_SETTINGS = "job.json"  # the settings a multi-run job was started with (reuse guard)
