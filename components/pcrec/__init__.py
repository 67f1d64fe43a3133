"""PCRec components: r-ego RWR sampling, GCC features, GIN encoder, MoCo, MF/BPR, LightGCN, metrics."""
import os as _os

# DGL picks its backend on import; without DGLBACKEND it writes ~/.dgl/config.json into the
# user's home. The components only use the PyTorch backend, so say so before any dgl import.
_os.environ.setdefault("DGLBACKEND", "pytorch")
