"""Export the bundled embedding model to ONNX for the package (run before PyInstaller on every
platform): the bundle runs the model on onnxruntime and ships without torch (archivist.spec).
Its weights are stored as float16 (half the bytes; the export is checked to give the model's
own vectors, cosine >= rag.onnx_encoder.AGREEMENT, or the build stops).

    python installers/export_embedder.py build/onnx
"""

import sys
from pathlib import Path

from rag.embedding import bundled_model_dir
from rag.onnx_encoder import export

if __name__ == "__main__":
    export(bundled_model_dir(), Path(sys.argv[1]), half_weights=True)
