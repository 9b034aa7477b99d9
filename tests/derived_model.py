"""A second embedding model for the suite, derived offline from the test model with the `gguf` package.

    python tests/derived_model.py SOURCE.gguf TARGET.gguf

The copy has the same weights but other metadata: a BGE model name, so memory-mcp gives queries the BGE
query prefix (the prefix path runs for real, and queries land elsewhere in the space than documents), and
CLS pooling instead of mean pooling, so every vector is a different function of the text. Its geometry
differs from the source model's everywhere (other similarity levels for related and unrelated texts), while
it still embeds by meaning, which is what the suite must hold for.

The suite makes it on demand (`MEMORY_MCP_TEST_MODEL_VARIANT=derived`) into a cache folder keyed by the
source's hash; nothing large is committed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

import gguf

NAME: Final = "bge-derived-MiniLM-L6-cls"
POOLING_CLS: Final = 2
VERSION: Final = 1
"""Bump when the recipe changes, so cached copies are remade."""


def derive(source: Path, target: Path) -> Path:
    """Write the derived model to `target` (atomically) and return it."""
    reader = gguf.GGUFReader(source)
    arch = reader.fields["general.architecture"].contents()
    partial = target.with_name(f".{target.name}.part")
    writer = gguf.GGUFWriter(partial, arch=arch, endianess=reader.endianess)
    overrides = {"general.name": NAME, f"{arch}.pooling_type": POOLING_CLS}
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue  # the writer adds these itself
        main = field.types[0]
        sub = field.types[-1] if main == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, overrides.pop(key, field.contents()), main, sub_type=sub)
    if overrides:
        raise SystemExit(f"{source} lacks {sorted(overrides)}: not the BERT embedding model this expects")
    for tensor in reader.tensors:
        writer.add_tensor_info(
            tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes, tensor.tensor_type
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in reader.tensors:
        writer.write_tensor_data(tensor.data)
    writer.close()
    partial.replace(target)
    return target


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    print(derive(Path(sys.argv[1]), Path(sys.argv[2])))
