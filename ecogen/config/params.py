"""The one configuration model of EcoGen: what ``params.yaml`` may hold.

Parsed once at the entry point (CLI, DVC stage, Prefect flow) and passed down as typed
sub-models.  Unknown keys are errors everywhere (``extra="forbid"``), counts are positive,
fractions lie in [0, 1]; a bad value is reported with the dotted path of its key.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ecogen.plugins import SOURCES, STRATEGIES, plugin_constant, plugin_names, registry_keys

DomainName = Literal["identity", "rotate90", "invert", "blur", "noise", "flip"]
DOMAIN_NAMES: tuple[str, ...] = get_args(DomainName)


FOLDER_NAME = re.compile(r"[^/\\.][^/\\]{0,127}")  # one folder, not a path, not hidden

# The linear layers of a ViT block (ecogen/models/vit.py) that LoRA can adapt
LORA_TARGETS = ("qkv", "proj", "fc1", "fc2")
# methods that average several participants' LoRA factors each round (the others pool, keep a
# model per cluster, train the whole model or have one participant): where FedEx-LoRA applies
FEDEX_METHODS = ("ecogen", "fedprox", "fedavg_peft")
# hfsl fields whose names a module's registry dict declares: field → (module, registry)
REGISTRIES = {"allocation": ("split/allocation", "RULES"), "driver": ("federated/drivers", "DRIVERS")}


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(Section):
    """Which images, which domains, and how they are partitioned (all seeded)."""

    source: str = "fashion_mnist"  # a file of ecogen/data/sources/: fashion_mnist, digits, imagefolder
    # IDX root for fashion_mnist, or the parent of one ImageFolder directory per domain.
    root: str | None = None
    # One domain per edge.  Built-in sources: each is a deterministic transform of the base images
    # (identity, rotate90, invert, blur, noise, flip).  imagefolder: the names of the domain folders
    # under data.root, each already its own style.
    domains: list[str] = Field(default_factory=lambda: ["identity", "rotate90", "invert"], min_length=1)
    # imagefolder only: a transform to apply to a domain folder's images, e.g. {scans: invert}
    transforms: dict[str, DomainName] = Field(default_factory=dict)
    # imagefolder only: the square side every image is brought to (null: the most common shorter
    # side among the images); built-in sources have their own size
    image_size: PositiveInt | None = None
    test_per_domain: PositiveInt = 1000
    public_pool: PositiveInt = 20000  # unlabelled images the cloud owns
    edge_labelled: PositiveInt = 500  # labelled images per edge server
    samples_per_cluster: PositiveInt = 2000  # images held by one client cluster
    dirichlet_alpha: PositiveFloat = 1.0  # label skew across clusters (smaller = more skew)
    labelled_fraction: float = Field(0.1, ge=0.0, le=1.0)  # λ: labelled share of client data

    @field_validator("source")
    @classmethod
    def _known_source(cls, source: str) -> str:
        if source not in plugin_names(SOURCES):
            raise ValueError(f"unknown data.source {source!r}; known: {', '.join(plugin_names(SOURCES))}")
        return source

    @model_validator(mode="after")
    def _unique_domains(self) -> DataParams:
        if len(set(self.domains)) != len(self.domains):
            raise ValueError("domains must be distinct")
        if self.source != "imagefolder":
            if unknown := [d for d in self.domains if d not in DOMAIN_NAMES]:
                raise ValueError(
                    f"{self.source} domains are transforms of its images, one of {', '.join(DOMAIN_NAMES)}; "
                    f"not {unknown} (folders of your own images: data.source imagefolder)"
                )
            if self.transforms or self.image_size is not None:
                raise ValueError("data.transforms and data.image_size are for data.source imagefolder only")
        elif bad := [d for d in self.domains if not FOLDER_NAME.fullmatch(d)]:
            raise ValueError(
                f"imagefolder domains are folder names under data.root (no '/', no leading '.'): {bad}"
            )
        elif stray := sorted(set(self.transforms) - set(self.domains)):
            raise ValueError(f"data.transforms names folders that are not in data.domains: {stray}")
        if self.source == "imagefolder" and self.root is None:
            raise ValueError(
                "data.source imagefolder needs data.root: the folder holding one folder per domain"
            )
        return self


class ModelParams(Section):
    """ViT encoder + MAE decoder sizes. Image size and classes come from the prepared data."""

    patch_size: PositiveInt = 4
    dim: PositiveInt = 64
    depth: PositiveInt = 4
    heads: PositiveInt = 4
    mlp_ratio: PositiveFloat = 2.0
    decoder_dim: PositiveInt = 32
    decoder_depth: PositiveInt = 1
    # Hidden width of the classification head's MLP (null: dim; 0: a linear head, the fewest
    # tunable bytes, since the head is trained at the edge and travels with the PEFT modules).
    head_hidden: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> ModelParams:
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        return self


class PretrainParams(Section):
    # Which foundation model: draw k > 0 seeds pre-training anew (0: the FM every run so far used).
    # Every downstream number follows the FM, so experiments repeat over draws (trials.fm_draws).
    draw: int = Field(0, ge=0)
    epochs: PositiveInt = 20
    batch_size: PositiveInt = 128
    lr: PositiveFloat = 2e-3
    # Larger batches (a GPU's): ``lr`` is the rate tuned at ``lr_batch`` images a step; a batch of
    # B trains at lr·(B / lr_batch)^k — k = ½ for sqrt, the square-root rule for Adam-type
    # optimisers (Malladi et al., 2022, arXiv 2205.10287), k = 1 for linear (Goyal et al., 2017,
    # arXiv 1706.02677; MAE's own rule), k = 0 for none.  benchmarks/large_batch.py measures it.
    lr_scaling: Literal["none", "sqrt", "linear"] = "none"
    lr_batch: PositiveInt = 128
    weight_decay: float = Field(0.05, ge=0.0)
    mask_ratio: float = Field(0.75, gt=0.0, lt=1.0)
    # auto: bf16 autocast on a CUDA device that supports it (weights, optimiser and the loss's
    # normalisation stay float32), float32 elsewhere
    precision: Literal["auto", "32", "bf16-mixed"] = "auto"
    # torch.compile the MAE (drops each epoch's last partial batch, so every step has one shape)
    compile: bool = False

    def scaled_lr(self) -> float:
        """The learning rate at ``batch_size`` under ``lr_scaling`` (see above)."""
        power = {"none": 0.0, "sqrt": 0.5, "linear": 1.0}[self.lr_scaling]
        return self.lr * (self.batch_size / self.lr_batch) ** power


class PeftParams(Section):
    """Edge fine-tuning: which PEFT method and how long."""

    method: Literal["lora", "prompt", "head"] = "lora"
    lora_rank: PositiveInt = 8
    lora_alpha: PositiveInt = 16
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: list(LORA_TARGETS), min_length=1)
    prompt_tokens: PositiveInt = 4  # deep visual prompt tuning: tokens per block
    epochs: PositiveInt = 40
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 5e-3

    @field_validator("target_modules")
    @classmethod
    def _known_targets(cls, targets: list[str]) -> list[str]:
        if unknown := [t for t in targets if t not in LORA_TARGETS]:
            raise ValueError(f"LoRA can adapt the ViT's {', '.join(LORA_TARGETS)}; not {unknown}")
        return targets


class HfslParams(Section):
    """Hybrid federated split learning over the client clusters of every edge.

    Defaults are params.yaml's, chosen by the hfsl-study pipeline (docs/hfsl-study.md).

    ``method`` picks EcoGen or one of the baselines it is compared with, all over the same data,
    backbone and rounds: one strategy file each in ``ecogen/federated/strategies/``.
    """

    # ecogen | centralized (oracle) | pooled_labels | pooled_ssl | edge_alone | local | fedavg_full
    # | fedavg_peft | splitfed | fedprox | semifl — the file names in ecogen/federated/strategies/
    method: str = "ecogen"
    clusters: PositiveInt = 3  # client clusters per edge (prepare writes this many)
    # Clusters of each edge drawn to take part in a round (null: every cluster, every round), drawn
    # anew each round from the edge's seed (ecogen/federated/participation.py).  A count rather
    # than Flower's fraction_fit: fraction_fit × clusters, floored at min_fit_clients, is a count
    # each round anyway, and a count states a round's cost (time, memory, bytes follow it, not
    # hfsl.clusters) without rounding.  Only the drawn clusters' data are read and only they get a
    # model copy; faults strike among them; the edge's own participant takes part in every round.
    clusters_per_round: PositiveInt | None = None
    devices_per_cluster: int = Field(3, ge=3)  # start (embedding), ≥1 middle (blocks), end (head)
    # How blocks are shared among the middle devices: "balanced" (contiguous ranges as equal as
    # possible, extra blocks to the first devices), "front" (every middle device one block, the
    # last middle device the rest: the weakest devices do the least), or "latency" / "energy" (the
    # split that minimises the modelled round latency / device energy of costs.cluster_devices,
    # docs/costs.md).
    allocation: str = "balanced"  # a rule of ecogen/split/allocation.py's RULES
    # How a round's participants train (ecogen/federated/drivers.py), through the same client step:
    # "serial", each as a lane of its own, in threads (the reference), or "batched", every cluster of
    # every edge as the lanes of one stacked computation (same results to float rounding, same bytes)
    driver: str = "batched"  # a driver of ecogen/federated/drivers.py's DRIVERS
    rounds: PositiveInt = 16
    local_epochs: PositiveInt = 1
    # A fixed number of client steps per round instead of epochs (null: local_epochs), so methods
    # whose clients hold different amounts of data can be given the same, stated budget.
    local_steps: PositiveInt | None = 15
    cloud_every: int = Field(0, ge=0)  # rounds between cloud aggregations across edges (0: never)
    batch_size: PositiveInt = 16  # labelled images per client batch
    unlabelled_ratio: PositiveInt = 3  # μ: unlabelled images per labelled image in a batch
    # A fresh optimiser per client and round.
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: PositiveFloat = 3e-3
    # constant: every client step at `lr`; cosine: one cosine decay from `lr` to 0 over all rounds'
    # client steps (round r of R covers [r/R, (r+1)/R] of it), the pooled learner's too
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    confidence_threshold: float = Field(0.95, ge=0.0, le=1.0)  # FixMatch pseudo-label cut
    # fixed: FixMatch's τ; aligned: + distribution alignment to the client's labelled class
    # frequencies; adaptive: FlexMatch's class-wise thresholds (ecogen/training/pseudo_label.py)
    # soft: the teacher's whole predicted distribution is the target (knowledge distillation on the
    # unlabelled images; with the round_start teacher it keeps a client close to the federation's
    # model in function space, as FedNTD does against label-skew drift); τ still masks
    pseudo_labels: Literal["fixed", "aligned", "adaptive", "soft"] = "fixed"
    unlabelled_weight: float = Field(0.0, ge=0.0)  # weight of the pseudo-label loss (0: labels only)
    # Views: the labelled images and the pseudo-labelling pass see `augment` (weak: a random
    # shift of ≤2 px; none: the image as is); the unlabelled images train on `unlabelled_view`.
    augment: Literal["weak", "none"] = "none"
    unlabelled_view: Literal["strong", "weak", "none"] = "strong"
    # Who pseudo-labels: the training model itself (self, FixMatch), the modules as delivered at the
    # round's start (round_start: the federation's model, fixed for the round), or an exponential
    # moving average of the training model (ema, Tarvainen & Valpola, 2017, arXiv 1703.01780).
    teacher: Literal["self", "round_start", "ema"] = "self"
    # Logit adjustment against label skew (Menon et al., 2021, arXiv 2007.07314; in FL: FedLC,
    # Zhang et al., 2022, arXiv 2209.00189): clients train on logits + τ·log(their class prior),
    # so the shared head learns the balanced posterior rather than each client's skew (0: off).
    logit_adjustment: float = Field(0.0, ge=0.0)
    ema_decay: float = Field(0.99, ge=0.0, lt=1.0)
    # SemiFL's "mix" loss (Diao et al., NeurIPS 2022, arXiv 2106.01432; mixup: Zhang et al., 2018,
    # arXiv 1710.09412): each unlabelled image's pseudo-labelling view is mixed with another of its
    # batch, λ ~ Beta(mixup_alpha, mixup_alpha) per batch (0.75 in the paper), and trains towards
    # the same mix of their pseudo-labels, counted where the first image's passes τ; mixup_weight ×
    # that loss is added to the client step (0: off; ecogen/training/mixup.py).  Needs the
    # unlabelled loss on (unlabelled_weight > 0).
    mixup_weight: float = Field(0.0, ge=0.0)
    mixup_alpha: PositiveFloat = 0.75
    # method semifl: the clusters also train on their own labels.  false: SemiFL's setting, clients
    # that hold no label (the clusters' ~10 % are withheld; the edge's labels alone are trained on).
    semifl_client_labels: bool = False
    # Feature-space pseudo-labels (ecogen/training/feature_labels.py): before the rounds, each
    # participant's unlabelled images take the vote of their feature_labels_k nearest labelled
    # images in the frozen FM's feature space (the edge's broadcast bank and the participant's own),
    # filtered hard: kept where at least feature_labels_confidence of the votes agree, and at most
    # feature_labels × N / classes per class (class-balanced), the surest first; a kept image
    # trains as labelled (0: off).  0.9: votes 9 of 10 neighbours agree on were 93 % right on
    # 45 % of the baselines' unlabelled images (draw 0); without the floor, 73–76 %.
    feature_labels: float = Field(0.0, ge=0.0, le=1.0)
    feature_labels_k: PositiveInt = 10
    feature_labels_confidence: float = Field(0.9, ge=0.0, le=1.0)
    # Generative adaptation at the clients: each client step adds mae_weight × the masked-autoencoder
    # loss (He et al., 2022, arXiv 2111.06377) of the batch's unlabelled images, reconstructed
    # through the cluster's split chain — visible patches picked on the start device, the lane's
    # LoRA in the middle, the FM's frozen decoder on the end device (ecogen/split/reconstruction.py):
    # the FM keeps learning its clients' data, the paper's bidirectional flow (Chen et al., arXiv
    # 2401.02668).  0: off.  mae_mask_ratio: the share of patches hidden (null: pretrain.mask_ratio).
    mae_weight: float = Field(0.0, ge=0.0)
    mae_mask_ratio: float | None = Field(None, gt=0.0, lt=1.0)
    # The edge trains on its own labelled set as one more participant of its rounds (it holds the
    # whole model, so nothing crosses a link for it); the pooled methods pool its labels too, and
    # `local` (no rounds, no edge) ignores it.
    edge_joins: bool = True
    # FedAvg's n_k: "trained" counts the examples a participant trains on (its labelled ones when
    # the unlabelled loss is off, else all); "labelled" counts its labelled examples only, so a
    # participant's say follows the labels it holds (the edge's 500 against a cluster's ~100).
    fedavg_weights: Literal["trained", "labelled"] = "labelled"
    # Server optimiser over the round's averaged update (Reddi et al., 2021, "Adaptive Federated
    # Optimization", arXiv 2003.00295): none (FedAvg), fedavgm (server momentum), fedadam.
    server_optimizer: Literal["none", "fedavgm", "fedadam"] = "none"
    server_lr: PositiveFloat = 1.0  # η: step along the (momentum / Adam) pseudo-gradient
    server_momentum: float = Field(0.9, ge=0.0, lt=1.0)  # β (fedavgm) or β1 (fedadam)
    proximal_mu: float = Field(0.0, ge=0.0, validate_default=True)  # fedprox: μ/2·‖w − w_round_start‖²
    # How LoRA's two factors are aggregated: "separate" averages A and B on their own, which is not
    # the average of the products B·A; "frozen_a" (FFA-LoRA, Sun et al., 2024, arXiv 2403.12313)
    # keeps A as the edge trained it and trains B only, so averaging B averages B·A exactly (and
    # only B crosses the edge↔client links); "fedex" (FedEx-LoRA, Singhal et al., 2024, arXiv
    # 2410.09432) averages A and B on their own and adds the residual s·(avg(B·A) − avg(B)·avg(A))
    # to the frozen weight of each LoRA layer, so the edge's model is exactly the FedAvg of its
    # participants' (the residual then travels edge → clients: ecogen/federated/fedex.py).
    lora_aggregation: Literal["separate", "frozen_a", "fedex"] = "separate"
    # Faults and defences (ecogen/federated/faults.py, privacy.py, aggregate.py).  Each device of a
    # cluster is offline in a round with probability device_dropout; a cluster missing a device
    # hands the device's segment to the nearest device of its chain that is online (hand_over: the
    # default — faults, 3 seeds, 30 % dropout: 0.764 vs 0.765 clean, sit_out 0.754, at ~3× the
    # edge↔client bytes of those rounds) or sits the round out (sit_out).  A cluster that took
    # part misses the upload deadline with probability straggler_rate (its upload is not
    # aggregated).
    device_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    dropout_policy: Literal["sit_out", "hand_over"] = "hand_over"
    straggler_rate: float = Field(0.0, ge=0.0, lt=1.0)
    # The edge's aggregation: fedavg (weighted mean), median or trimmed_mean (coordinate-wise;
    # trim_fraction cut from each end) or norm_clip (updates clipped to clip_norm).  robust_weights:
    # the median and trimmed mean weigh each upload by its examples, as FedAvg does (examples), or
    # count every upload the same (equal: a participant cannot gain say by claiming examples)
    aggregation: Literal["fedavg", "median", "trimmed_mean", "norm_clip"] = "fedavg"
    trim_fraction: float = Field(0.2, ge=0.0, lt=0.5)
    robust_weights: Literal["examples", "equal"] = "examples"
    clip_norm: PositiveFloat = 1.0  # L2 norm of one upload's update (norm_clip, and DP's clip)
    # Poisoned uploads, for the robustness benchmark: the first `attackers` clusters of each edge
    # upload w0 - a(w - w0) (sign_flip) or w0 + a(w - w0) (scale), a = attack_scale
    attack: Literal["none", "sign_flip", "scale"] = "none"
    attackers: int = Field(0, ge=0)
    attack_scale: PositiveFloat = 10.0
    # Differential privacy at (dp_epsilon, dp_delta) over all rounds (null: no DP), by one of three
    # mechanisms (docs/faults.md says what each protects from whom):
    # - upload: local DP; every upload clipped to clip_norm and noised on the device (Gaussian)
    # - dp_sgd: example-level DP-SGD on each cluster (Abadi et al., 2016, arXiv 1607.00133):
    #   Poisson-sampled labelled records, each example's gradient clipped to dp_example_clip,
    #   Gaussian noise by the RDP accountant (dp-accounting); protects each record a device holds
    #   (labels only: no unlabelled or MAE loss, no feature labels); the edge's own participant is not noised
    # - central: DP-FedAvg at the edge (McMahan et al., 2018, arXiv 1710.06963): each cluster's
    #   update clipped to clip_norm, Gaussian noise on the edge's sum; protects a cluster's
    #   participation in the models the edge releases, trusting the edge (aggregation fedavg)
    dp_epsilon: PositiveFloat | None = None
    dp_delta: float = Field(1e-5, gt=0.0, lt=1.0)
    dp_mechanism: Literal["upload", "dp_sgd", "central"] = "upload"
    dp_example_clip: PositiveFloat = 1.0  # dp_sgd: L2 norm each example's gradient is clipped to

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        known = plugin_names(STRATEGIES, frozenset({"base"}))  # lists files, imports none of them
        if method not in known:
            raise ValueError(f"unknown HFSL method {method!r}; known: {', '.join(known)}")
        return method

    @field_validator("allocation", "driver")
    @classmethod
    def _registered(cls, name: str, info: ValidationInfo) -> str:
        module, registry = REGISTRIES[info.field_name or ""]
        known = registry_keys(module, registry)  # reads the registry's keys, imports nothing
        if name not in known:
            raise ValueError(f"unknown hfsl.{info.field_name} {name!r}; known: {', '.join(known)}")
        return name

    @field_validator("proximal_mu")
    @classmethod
    def _mu_is_fedprox(cls, mu: float, info: ValidationInfo) -> float:
        if (info.data.get("method") == "fedprox") != (mu > 0):
            raise ValueError("FedProx's μ: give it (> 0) with method fedprox, and only with it")
        return mu

    @model_validator(mode="after")
    def _semifl_and_mixup(self) -> HfslParams:
        if self.mixup_weight > 0 and self.unlabelled_weight == 0:
            raise ValueError("hfsl.mixup_weight mixes pseudo-labelled images: it needs unlabelled_weight > 0")
        if self.semifl_client_labels and self.method != "semifl":
            raise ValueError("hfsl.semifl_client_labels is method semifl's: give it with method semifl only")
        if self.method != "semifl":
            return self
        if self.unlabelled_weight == 0 or self.teacher != "round_start":
            raise ValueError(
                "method semifl trains its clusters on the delivered model's pseudo-labels: "
                "give unlabelled_weight > 0 and teacher round_start"
            )
        if self.fedavg_weights == "labelled" and not self.semifl_client_labels:
            raise ValueError(
                "method semifl's clusters hold no labels, so fedavg_weights labelled gives each of "
                "them no say: give fedavg_weights trained (or semifl_client_labels true)"
            )
        return self

    @model_validator(mode="after")
    def _levers_fit_the_method(self) -> HfslParams:
        if self.method in ("local", "centralized", "pooled_labels") and self.server_optimizer != "none":
            raise ValueError(f"server_optimizer needs a federated method; method is {self.method}")
        federated = self.method not in ("local", "centralized", "pooled_labels")
        faulty = self.device_dropout or self.straggler_rate or self.attack != "none" or self.dp_epsilon
        if faulty and not federated:
            raise ValueError(f"faults, attacks and DP apply to uploads; method {self.method} aggregates none")
        self._fedex_fits()
        self._dp_fits()
        if (self.attack == "none") != (self.attackers == 0):
            raise ValueError("give attack and attackers (> 0) together, or neither")
        if self.attackers > self.clusters:
            raise ValueError(f"attackers ({self.attackers}) exceeds clusters ({self.clusters})")
        if self.clusters_per_round is not None:
            if self.clusters_per_round > self.clusters:
                raise ValueError(
                    f"clusters_per_round ({self.clusters_per_round}) exceeds clusters ({self.clusters})"
                )
            if self.clusters_per_round < self.clusters and not federated:
                keeps = "keeps a model per cluster" if self.method == "local" else "pools all clusters' data"
                raise ValueError(
                    f"clusters_per_round ({self.clusters_per_round} of {self.clusters}) samples the clusters "
                    f"that train each round, but method {self.method} {keeps}: give clusters_per_round "
                    "null (every cluster) or a federated method"
                )
        return self

    def _fedex_fits(self) -> None:
        """FedEx-LoRA's residual makes one thing exact: an edge's plain FedAvg of LoRA factors."""
        if self.lora_aggregation != "fedex":
            return
        if self.method not in FEDEX_METHODS:
            raise ValueError(
                f"lora_aggregation fedex averages the LoRA factors of a round's participants; method "
                f"{self.method} does not (use one of {', '.join(FEDEX_METHODS)})"
            )
        if self.aggregation != "fedavg" or self.server_optimizer != "none" or self.server_lr != 1.0:
            raise ValueError(
                "lora_aggregation fedex makes FedAvg exact: give aggregation fedavg, server_optimizer "
                "none and server_lr 1.0"
            )
        if self.cloud_every:
            raise ValueError(
                "lora_aggregation fedex corrects each edge's frozen weights; the cloud's average of "
                "the edges' modules is not corrected: give cloud_every 0"
            )
        if self.dp_epsilon:  # a DP-FedAvg edge would send a residual of the uploads before its noise
            raise ValueError(
                "lora_aggregation fedex is not covered by the DP accounting: give dp_epsilon null"
            )

    def _dp_fits(self) -> None:
        if self.dp_mechanism != "upload" and not self.dp_epsilon:
            raise ValueError(f"dp_mechanism {self.dp_mechanism} needs dp_epsilon (the ε it keeps to)")
        other_losses = self.unlabelled_weight > 0 or self.feature_labels > 0 or self.mae_weight > 0
        if self.dp == "dp_sgd" and other_losses:
            raise ValueError(
                "dp_mechanism dp_sgd privatises the labelled loss only: give unlabelled_weight, "
                "feature_labels and mae_weight 0 (a feature label is voted by other records, so one "
                "record would reach many examples)"
            )
        if self.dp == "central" and self.aggregation != "fedavg":
            raise ValueError(f"dp_mechanism central is DP-FedAvg: aggregation fedavg, not {self.aggregation}")

    @property
    def dp(self) -> Literal["upload", "dp_sgd", "central"] | None:
        """The DP mechanism in force (None: no DP)."""
        return self.dp_mechanism if self.dp_epsilon else None


class RelayParams(Section):
    """Data-free knowledge relay: the edges' domain models (teachers) distilled into the FM
    (student: backbone + one shared head) on a transfer set the cloud owns."""

    epochs: PositiveInt = 10
    batch_size: PositiveInt = 128
    lr: PositiveFloat = 2e-3
    temperature: PositiveFloat = 2.0  # distillation temperature
    # Which teacher teaches each transfer image: "routed" (the teacher whose edge's style
    # prototypes — class means of the FM's token features, uploaded once — are nearest: the
    # default, from the relay study in docs/relay.md), or a per-sample mix of all of them: "mean"
    # (plain average), "confidence" (low-entropy teachers count more) or "agreement" (confidence ×
    # agreement with the others, so a teacher contradicting the consensus is damped).
    weighting: Literal["routed", "mean", "confidence", "agreement"] = "routed"
    public_samples: int = Field(10000, ge=0)  # images drawn from the public pool
    synthetic_samples: int = Field(5000, ge=0)  # images the FM's decoder synthesises
    synthetic_mask_ratio: float = Field(0.85, gt=0.0, lt=1.0)  # masks the FM reconstructs from
    train: Literal["full", "head"] = "full"  # what the student trains: backbone + head, or head
    cycles: PositiveInt = 1  # N: deliver → finetune → hfsl → relay cycles of a `cycle` pipeline

    @model_validator(mode="after")
    def _some_transfer_data(self) -> RelayParams:
        if self.public_samples + self.synthetic_samples == 0:
            raise ValueError("the transfer set is empty: give public_samples or synthetic_samples")
        return self


class InferenceParams(Section):
    """SL inference through the split chain; link time comes from this bandwidth model."""

    batch_size: PositiveInt = 256
    d2d_bandwidth_mbps: PositiveFloat = 100.0  # device-to-device link, megabits per second
    d2d_latency_ms: float = Field(2.0, ge=0.0)  # per-hop propagation delay


class DeviceClass(Section):
    """One kind of device as the cost model sees it: sustained compute and power drawn."""

    flops: PositiveFloat  # FLOP/s it sustains on the model's kernels (not its datasheet peak)
    watts_busy: PositiveFloat  # while computing
    watts_idle: PositiveFloat  # while waiting for its turn in the chain


class LinkClass(Section):
    """One kind of link: how fast a byte crosses it and what crossing costs."""

    mbps: PositiveFloat  # sustained throughput, megabits per second
    latency_ms: float = Field(ge=0.0)  # per message (one tensor one way)
    joules_per_byte: PositiveFloat  # radio / network energy of one byte sent


def _default_devices() -> dict[str, DeviceClass]:
    # params.yaml states each number's source; these are the same numbers
    return {
        "phone": DeviceClass(flops=2e10, watts_busy=4.0, watts_idle=0.3),
        "board": DeviceClass(flops=1e12, watts_busy=15.0, watts_idle=3.0),
        "weak": DeviceClass(flops=1e9, watts_busy=1.5, watts_idle=0.4),
        "edge_server": DeviceClass(flops=4e12, watts_busy=70.0, watts_idle=10.0),
        "cloud_gpu": DeviceClass(flops=3e13, watts_busy=700.0, watts_idle=70.0),
    }


def _default_links() -> dict[str, LinkClass]:
    return {
        "d2d": LinkClass(mbps=100.0, latency_ms=2.0, joules_per_byte=8e-8),
        "edge_client": LinkClass(mbps=50.0, latency_ms=20.0, joules_per_byte=4e-7),
        "cloud_edge": LinkClass(mbps=1000.0, latency_ms=30.0, joules_per_byte=7e-6),
    }


LINK_NAMES = ("d2d", "edge_client", "cloud_edge")  # the link classes of ecogen/split/channel.py


class CostParams(Section):
    """The device and link cost model (``ecogen/costs/``, docs/costs.md): modelled seconds and
    joules of a round on the devices a cluster would really be, never measured on this host
    (CodeCarbon's figures are the host's; the two are kept apart by name).

    ``cluster_devices`` names the class of each position of a cluster's chain: start
    (embedding), the middle devices (blocks), end (head).  It may be shorter than
    ``hfsl.devices_per_cluster``: the last middle class listed then stands for every further
    middle device (the end stays the end), so changing the device count needs no edit here.
    """

    devices: dict[str, DeviceClass] = Field(default_factory=_default_devices, min_length=1)
    links: dict[str, LinkClass] = Field(default_factory=_default_links)
    cluster_devices: list[str] = Field(default_factory=lambda: ["phone", "board", "phone"], min_length=3)

    @field_validator("links")
    @classmethod
    def _every_link(cls, links: dict[str, LinkClass]) -> dict[str, LinkClass]:
        if sorted(links) != sorted(LINK_NAMES):
            raise ValueError(f"costs.links must give exactly {', '.join(LINK_NAMES)}; got {', '.join(links)}")
        return links

    @model_validator(mode="after")
    def _known_classes(self) -> CostParams:
        if unknown := [d for d in self.cluster_devices if d not in self.devices]:
            raise ValueError(
                f"costs.cluster_devices names unknown device classes {unknown}; "
                f"known (costs.devices): {', '.join(self.devices)}"
            )
        return self

    def chain(self, devices: int) -> list[str]:
        """The device class of each of a cluster's ``devices`` positions (start, middle…, end)."""
        listed = self.cluster_devices
        if devices < len(listed):
            raise ValueError(
                f"costs.cluster_devices lists {len(listed)} devices but hfsl.devices_per_cluster is {devices}"
            )
        middle = listed[1:-1]
        return [listed[0], *middle, *[middle[-1]] * (devices - len(listed)), listed[-1]]


class EnergyParams(Section):
    enabled: bool = True
    country_iso_code: str = Field("FRA", min_length=3, max_length=3)


class StreamParams(Section):
    """A pipeline that keeps learning (``ecogen/stream/``): the clients' data arrives in increments,
    each run takes in the next one, starts from the models the edges serve (the registry's
    ``champion``) and promotes its result only when the gate passes it.

    ``increments`` null: no stream, all data at once (every other pipeline).
    """

    increments: int | None = Field(None, ge=2)  # N: each cluster's and edge's data cut into N parts
    # The increment this run takes in (0…N-1); null: the one after the last taken in (read from
    # the tracking store).  Taking in one already taken in is a no-op.
    increment: int | None = Field(None, ge=0)
    # Non-stationarity: from increment `shift_at` on, every new image (clients', edge's and the
    # increment's test slice) also goes through `shift` (a domain transform), as when a camera
    # or a sensor changes; null: a stationary stream.
    shift_at: int | None = Field(None, ge=1)
    shift: DomainName = "noise"
    test_per_increment: PositiveInt = 300  # each increment's own test images per edge (held out)
    # How a run starts: continuous (warm: the champion's modules, `warm_rounds` of HFSL on all
    # data so far), retrain (cold: a fresh edge fine-tune and `hfsl.rounds` on all data so far)
    mode: Literal["continuous", "retrain"] = "continuous"
    warm_rounds: PositiveInt = 4
    # HFSL rounds of a warm run in which an edge's images drifted (it re-fine-tuned): a shift is
    # new to the served modules, so they may need a cold run's rounds (null: warm_rounds)
    drift_rounds: PositiveInt | None = None
    # Epochs the edge re-tunes the served modules on its labelled images so far at every warm
    # increment (0: kept as served unless drift; a drift re-tunes them for peft.epochs)
    retune_epochs: int = Field(0, ge=0)
    # The gate: promoted when the challenger beats the champion by `promote_margin` (accuracy) on the
    # newest increment's test slice and loses at most `max_forgetting` on the fixed held-out test set
    promote_margin: float = Field(0.0, ge=0.0, lt=1.0)
    # 0.05 from the stream study (docs/stream.md, 3 seeds): at 0.01 the gate rejected most
    # challengers after a shift (they learn it at 1.5-13 points of the unshifted set) and the
    # edges kept serving the old model; at 0.05 +8 to +17 points on the shifted increments, and
    # the first increment's accuracy still ends above where it started
    max_forgetting: float = Field(0.05, ge=0.0, lt=1.0)
    # Drift: a classifier two-sample test on the FM's features of the newest increment's client images
    # against the increment before's (cross-validated ROC AUC; 0.5: indistinguishable)
    drift_threshold: float = Field(0.75, gt=0.5, le=1.0)
    drift_samples: PositiveInt = 400  # images per side
    # The response to drift beyond the threshold: finetune (the edge re-fine-tunes the champion's
    # modules on its labelled images so far before HFSL) or none (logged and said only)
    on_drift: Literal["finetune", "none"] = "finetune"

    def warm_rounds_for(self, drifted: bool) -> int:
        """HFSL rounds of a warm-started run: `drift_rounds` after a drift when set."""
        return self.drift_rounds if drifted and self.drift_rounds else self.warm_rounds

    @model_validator(mode="after")
    def _within_stream(self) -> StreamParams:
        if self.increments is None:
            if self.increment is not None or self.shift_at is not None:
                raise ValueError("stream.increment and stream.shift_at need stream.increments")
            return self
        for key in ("increment", "shift_at"):
            value = getattr(self, key)
            if value is not None and value >= self.increments:
                raise ValueError(
                    f"stream.{key} ({value}) must be below stream.increments ({self.increments})"
                )
        return self


class TrackingParams(Section):
    experiment: str = Field("ecogen", min_length=1)
    # None: MLFLOW_TRACKING_URI if set, else sqlite:///<project>/mlflow.db
    uri: str | None = None


class Params(Section):
    """Root of ``params.yaml``."""

    seed: int = 0
    # Repetition of a trial: varies the seeds of client training (batches, augmentations), not
    # the data partition or the FM, so rows of one experiment are compared on the same data.
    replicate: int = Field(0, ge=0)
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    data: DataParams = DataParams()
    model: ModelParams = ModelParams()
    pretrain: PretrainParams = PretrainParams()
    peft: PeftParams = PeftParams()
    hfsl: HfslParams = HfslParams()
    relay: RelayParams = RelayParams()
    inference: InferenceParams = InferenceParams()
    energy: EnergyParams = EnergyParams()
    costs: CostParams = CostParams()
    stream: StreamParams = StreamParams()
    tracking: TrackingParams = TrackingParams()

    @model_validator(mode="after")
    def _patches_tile_the_images(self) -> Params:
        side = plugin_constant(SOURCES, self.data.source, "SIDE") or self.data.image_size
        assert side is None or isinstance(side, int), f"SIDE of data.source {self.data.source}: {side!r}"
        if side is not None and side % self.model.patch_size:
            raise ValueError(
                f"model.patch_size {self.model.patch_size} does not divide the {side}×{side} images of "
                f"data.source {self.data.source}"
            )
        return self

    @model_validator(mode="after")
    def _stream_fits_data(self) -> Params:
        if (n := self.stream.increments) is not None:
            d = self.data
            if d.samples_per_cluster < n or d.edge_labelled < n:
                raise ValueError(
                    f"stream.increments ({n}) cuts each cluster's samples_per_cluster "
                    f"({d.samples_per_cluster}) and the edge's edge_labelled ({d.edge_labelled}): "
                    "each needs at least one image per increment"
                )
        return self

    @model_validator(mode="after")
    def _cluster_devices_fit(self) -> Params:
        self.costs.chain(self.hfsl.devices_per_cluster)  # raises when it lists more devices
        return self

    @model_validator(mode="after")
    def _depth_fits_devices(self) -> Params:
        middle = self.hfsl.devices_per_cluster - 2
        if middle > self.model.depth:
            raise ValueError(
                f"hfsl.devices_per_cluster ({self.hfsl.devices_per_cluster}) leaves {middle} middle "
                f"devices but model.depth is {self.model.depth}: each middle device needs ≥1 block"
            )
        return self

    @model_validator(mode="after")
    def _fedex_needs_lora(self) -> Params:
        if self.hfsl.lora_aggregation == "fedex" and self.peft.method != "lora":
            raise ValueError(
                f"hfsl.lora_aggregation fedex corrects LoRA layers; peft.method is {self.peft.method}"
            )
        return self
