#!/usr/bin/env bash
# Writes testdata/mar/: archives made by the real torch-model-archiver 0.12 (never by hand), for
# scancer's byte-level manifest checks and its .mar/tgz/no-archive readers.
# Needs: pip install torch-model-archiver==0.12.0 (ARCHIVER=path/to/torch-model-archiver to choose one).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
archiver=${ARCHIVER:-torch-model-archiver}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$root/testdata/mar"
rm -rf "$out"
mkdir -p "$out"
cd "$work"
# A multiclass model that accepts any input size, so image_classifier's 224x224 crops fit it.
cp "$root/testdata/models/tissue-multiclass.pt" tissue.pt
mkdir -p extra/sub
printf '{"0": "adipose", "1": ["T1", "stroma"], "2": "tumour", "3": "lymphocytes"}\n' > extra/index_to_name.json
printf 'notes\n' > extra/sub/notes.md
printf 'x\n' > README.txt
printf 'from ts.torch_handler.image_classifier import ImageClassifier\n\n\nclass TissueHandler(ImageClassifier):\n    pass\n' > tissue_handler.py
printf 'import torch\n' > model.py
printf 'pillow\n' > requirements.txt
printf 'minWorkers: 1\nmaxWorkers: 2\nbatchSize: 4\n' > model-config.yaml

"$archiver" --model-name tissue --version 1.0 --serialized-file tissue.pt --handler image_classifier \
    --extra-files extra/index_to_name.json --export-path "$out"
"$archiver" --model-name tissue-full --version 2.1 --serialized-file tissue.pt --model-file model.py \
    --handler tissue_handler.py --extra-files extra,README.txt -r requirements.txt -c model-config.yaml \
    --export-path "$out"
"$archiver" --model-name tissue-store --version 1.0 --serialized-file tissue.pt --handler image_classifier \
    --archive-format zip-store --export-path "$out"
"$archiver" --model-name tissue-tgz --version 1.0 --serialized-file tissue.pt --handler image_classifier \
    --extra-files extra/index_to_name.json --archive-format tgz --export-path "$out"
"$archiver" --model-name tissue-dir --version 1.0 --serialized-file tissue.pt --handler image_classifier \
    --extra-files extra/index_to_name.json --archive-format no-archive --export-path "$out"
echo "wrote $(ls "$out" | wc -l) archives into testdata/mar"
