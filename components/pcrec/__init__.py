"""PCRec components: r-ego RWR sampling, GCC features, GIN encoder, MoCo, MF/BPR, LightGCN, metrics."""
