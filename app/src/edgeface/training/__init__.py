"""Training: a folder of photos (or the seed's metadata.yaml) → a FaceModel, one concern a module.

    photos     where the photos are: `Name.jpg`, `Name/*.jpg`, the seed's metadata.yaml
    values     what a photo and its outcome are (Photo, Analysis, PhotoResult, skip reasons)
    hashing    a photo's content sha256: the cache key and the duplicate check
    detection  how one photo is decoded, its face found and encoded (DetectionSettings)
    cache      analyses by content hash, so a retrain analyses only new photos
    pool       every photo's outcome, cache first, the misses over a process pool
    build      the model of the usable photos; `train` runs photos → pool → build
    legacy     the only reader of the original demo's pickles, behind an explicit flag

The progress bar and the summary table are the command line's (edgeface.training_cli).
"""
