from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DTYPE_UNSPECIFIED: _ClassVar[DType]
    FLOAT32: _ClassVar[DType]
    UINT8: _ClassVar[DType]

class NoiseMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOISE_MODE_UNSPECIFIED: _ClassVar[NoiseMode]
    CONST: _ClassVar[NoiseMode]
    RANDOM: _ClassVar[NoiseMode]
    NONE: _ClassVar[NoiseMode]

class ImageFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_FORMAT_UNSPECIFIED: _ClassVar[ImageFormat]
    PNG: _ClassVar[ImageFormat]
    JPEG: _ClassVar[ImageFormat]
    RAW_UINT8: _ClassVar[ImageFormat]
    RAW_FLOAT32: _ClassVar[ImageFormat]

class Space(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPACE_UNSPECIFIED: _ClassVar[Space]
    W: _ClassVar[Space]
    Z: _ClassVar[Space]

class ProjectionSpace(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROJECTION_SPACE_UNSPECIFIED: _ClassVar[ProjectionSpace]
    PROJECTION_SPACE_W: _ClassVar[ProjectionSpace]
    PROJECTION_SPACE_W_PLUS: _ClassVar[ProjectionSpace]
DTYPE_UNSPECIFIED: DType
FLOAT32: DType
UINT8: DType
NOISE_MODE_UNSPECIFIED: NoiseMode
CONST: NoiseMode
RANDOM: NoiseMode
NONE: NoiseMode
IMAGE_FORMAT_UNSPECIFIED: ImageFormat
PNG: ImageFormat
JPEG: ImageFormat
RAW_UINT8: ImageFormat
RAW_FLOAT32: ImageFormat
SPACE_UNSPECIFIED: Space
W: Space
Z: Space
PROJECTION_SPACE_UNSPECIFIED: ProjectionSpace
PROJECTION_SPACE_W: ProjectionSpace
PROJECTION_SPACE_W_PLUS: ProjectionSpace

class Tensor(_message.Message):
    __slots__ = ("shape", "dtype", "data")
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    shape: _containers.RepeatedScalarFieldContainer[int]
    dtype: DType
    data: bytes
    def __init__(self, shape: _Optional[_Iterable[int]] = ..., dtype: _Optional[_Union[DType, str]] = ..., data: _Optional[bytes] = ...) -> None: ...

class SeedList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, values: _Optional[_Iterable[int]] = ...) -> None: ...

class RenderOptions(_message.Message):
    __slots__ = ("noise_mode", "noise_seed", "format", "jpeg_quality", "transform")
    NOISE_MODE_FIELD_NUMBER: _ClassVar[int]
    NOISE_SEED_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    JPEG_QUALITY_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    noise_mode: NoiseMode
    noise_seed: int
    format: ImageFormat
    jpeg_quality: int
    transform: Transform
    def __init__(self, noise_mode: _Optional[_Union[NoiseMode, str]] = ..., noise_seed: _Optional[int] = ..., format: _Optional[_Union[ImageFormat, str]] = ..., jpeg_quality: _Optional[int] = ..., transform: _Optional[_Union[Transform, _Mapping]] = ...) -> None: ...

class Transform(_message.Message):
    __slots__ = ("translate", "rotate", "matrix")
    TRANSLATE_FIELD_NUMBER: _ClassVar[int]
    ROTATE_FIELD_NUMBER: _ClassVar[int]
    MATRIX_FIELD_NUMBER: _ClassVar[int]
    translate: _containers.RepeatedScalarFieldContainer[float]
    rotate: _containers.RepeatedScalarFieldContainer[float]
    matrix: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, translate: _Optional[_Iterable[float]] = ..., rotate: _Optional[_Iterable[float]] = ..., matrix: _Optional[_Iterable[float]] = ...) -> None: ...

class DirectionEdit(_message.Message):
    __slots__ = ("set", "index", "name", "strength")
    SET_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    set: str
    index: int
    name: str
    strength: float
    def __init__(self, set: _Optional[str] = ..., index: _Optional[int] = ..., name: _Optional[str] = ..., strength: _Optional[float] = ...) -> None: ...

class Images(_message.Message):
    __slots__ = ("format", "pixels", "encoded")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    PIXELS_FIELD_NUMBER: _ClassVar[int]
    ENCODED_FIELD_NUMBER: _ClassVar[int]
    format: ImageFormat
    pixels: Tensor
    encoded: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, format: _Optional[_Union[ImageFormat, str]] = ..., pixels: _Optional[_Union[Tensor, _Mapping]] = ..., encoded: _Optional[_Iterable[bytes]] = ...) -> None: ...

class MapOptions(_message.Message):
    __slots__ = ("psi", "cutoff", "class_index", "c")
    PSI_FIELD_NUMBER: _ClassVar[int]
    CUTOFF_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    C_FIELD_NUMBER: _ClassVar[int]
    psi: float
    cutoff: int
    class_index: int
    c: Tensor
    def __init__(self, psi: _Optional[float] = ..., cutoff: _Optional[int] = ..., class_index: _Optional[int] = ..., c: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("model", "seeds", "z", "map", "render", "return_ws", "edits")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    RENDER_FIELD_NUMBER: _ClassVar[int]
    RETURN_WS_FIELD_NUMBER: _ClassVar[int]
    EDITS_FIELD_NUMBER: _ClassVar[int]
    model: str
    seeds: SeedList
    z: Tensor
    map: MapOptions
    render: RenderOptions
    return_ws: bool
    edits: _containers.RepeatedCompositeFieldContainer[DirectionEdit]
    def __init__(self, model: _Optional[str] = ..., seeds: _Optional[_Union[SeedList, _Mapping]] = ..., z: _Optional[_Union[Tensor, _Mapping]] = ..., map: _Optional[_Union[MapOptions, _Mapping]] = ..., render: _Optional[_Union[RenderOptions, _Mapping]] = ..., return_ws: _Optional[bool] = ..., edits: _Optional[_Iterable[_Union[DirectionEdit, _Mapping]]] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("images", "ws")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    WS_FIELD_NUMBER: _ClassVar[int]
    images: Images
    ws: Tensor
    def __init__(self, images: _Optional[_Union[Images, _Mapping]] = ..., ws: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...

class MapRequest(_message.Message):
    __slots__ = ("model", "seeds", "z", "map")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    model: str
    seeds: SeedList
    z: Tensor
    map: MapOptions
    def __init__(self, model: _Optional[str] = ..., seeds: _Optional[_Union[SeedList, _Mapping]] = ..., z: _Optional[_Union[Tensor, _Mapping]] = ..., map: _Optional[_Union[MapOptions, _Mapping]] = ...) -> None: ...

class MapResponse(_message.Message):
    __slots__ = ("ws",)
    WS_FIELD_NUMBER: _ClassVar[int]
    ws: Tensor
    def __init__(self, ws: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...

class SynthesizeRequest(_message.Message):
    __slots__ = ("model", "ws", "render", "edits")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WS_FIELD_NUMBER: _ClassVar[int]
    RENDER_FIELD_NUMBER: _ClassVar[int]
    EDITS_FIELD_NUMBER: _ClassVar[int]
    model: str
    ws: Tensor
    render: RenderOptions
    edits: _containers.RepeatedCompositeFieldContainer[DirectionEdit]
    def __init__(self, model: _Optional[str] = ..., ws: _Optional[_Union[Tensor, _Mapping]] = ..., render: _Optional[_Union[RenderOptions, _Mapping]] = ..., edits: _Optional[_Iterable[_Union[DirectionEdit, _Mapping]]] = ...) -> None: ...

class MixRequest(_message.Message):
    __slots__ = ("model", "w_a", "w_b", "layers", "render", "edits")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    W_A_FIELD_NUMBER: _ClassVar[int]
    W_B_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    RENDER_FIELD_NUMBER: _ClassVar[int]
    EDITS_FIELD_NUMBER: _ClassVar[int]
    model: str
    w_a: Tensor
    w_b: Tensor
    layers: _containers.RepeatedScalarFieldContainer[int]
    render: RenderOptions
    edits: _containers.RepeatedCompositeFieldContainer[DirectionEdit]
    def __init__(self, model: _Optional[str] = ..., w_a: _Optional[_Union[Tensor, _Mapping]] = ..., w_b: _Optional[_Union[Tensor, _Mapping]] = ..., layers: _Optional[_Iterable[int]] = ..., render: _Optional[_Union[RenderOptions, _Mapping]] = ..., edits: _Optional[_Iterable[_Union[DirectionEdit, _Mapping]]] = ...) -> None: ...

class ImagesResponse(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: Images
    def __init__(self, images: _Optional[_Union[Images, _Mapping]] = ...) -> None: ...

class InterpolateRequest(_message.Message):
    __slots__ = ("model", "seeds", "z", "ws", "num_frames", "space", "map", "render", "return_ws")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    WS_FIELD_NUMBER: _ClassVar[int]
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    RENDER_FIELD_NUMBER: _ClassVar[int]
    RETURN_WS_FIELD_NUMBER: _ClassVar[int]
    model: str
    seeds: SeedList
    z: Tensor
    ws: Tensor
    num_frames: int
    space: Space
    map: MapOptions
    render: RenderOptions
    return_ws: bool
    def __init__(self, model: _Optional[str] = ..., seeds: _Optional[_Union[SeedList, _Mapping]] = ..., z: _Optional[_Union[Tensor, _Mapping]] = ..., ws: _Optional[_Union[Tensor, _Mapping]] = ..., num_frames: _Optional[int] = ..., space: _Optional[_Union[Space, str]] = ..., map: _Optional[_Union[MapOptions, _Mapping]] = ..., render: _Optional[_Union[RenderOptions, _Mapping]] = ..., return_ws: _Optional[bool] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("index", "total", "image", "ws")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    WS_FIELD_NUMBER: _ClassVar[int]
    index: int
    total: int
    image: Images
    ws: Tensor
    def __init__(self, index: _Optional[int] = ..., total: _Optional[int] = ..., image: _Optional[_Union[Images, _Mapping]] = ..., ws: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...

class ProjectRequest(_message.Message):
    __slots__ = ("model", "targets", "space", "steps", "loss", "seed", "optimize_noise", "init", "progress_every", "preview", "transform")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZE_NOISE_FIELD_NUMBER: _ClassVar[int]
    INIT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_EVERY_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    model: str
    targets: _containers.RepeatedScalarFieldContainer[bytes]
    space: ProjectionSpace
    steps: int
    loss: str
    seed: int
    optimize_noise: bool
    init: Tensor
    progress_every: int
    preview: bool
    transform: Transform
    def __init__(self, model: _Optional[str] = ..., targets: _Optional[_Iterable[bytes]] = ..., space: _Optional[_Union[ProjectionSpace, str]] = ..., steps: _Optional[int] = ..., loss: _Optional[str] = ..., seed: _Optional[int] = ..., optimize_noise: _Optional[bool] = ..., init: _Optional[_Union[Tensor, _Mapping]] = ..., progress_every: _Optional[int] = ..., preview: _Optional[bool] = ..., transform: _Optional[_Union[Transform, _Mapping]] = ...) -> None: ...

class ProjectProgress(_message.Message):
    __slots__ = ("step", "steps", "losses", "preview")
    STEP_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    LOSSES_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    step: int
    steps: int
    losses: _containers.RepeatedScalarFieldContainer[float]
    preview: Images
    def __init__(self, step: _Optional[int] = ..., steps: _Optional[int] = ..., losses: _Optional[_Iterable[float]] = ..., preview: _Optional[_Union[Images, _Mapping]] = ...) -> None: ...

class ProjectResult(_message.Message):
    __slots__ = ("ws", "losses", "images", "targets", "loss", "space", "steps", "seed", "stopped")
    WS_FIELD_NUMBER: _ClassVar[int]
    LOSSES_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    ws: Tensor
    losses: Tensor
    images: Images
    targets: Images
    loss: str
    space: ProjectionSpace
    steps: int
    seed: int
    stopped: bool
    def __init__(self, ws: _Optional[_Union[Tensor, _Mapping]] = ..., losses: _Optional[_Union[Tensor, _Mapping]] = ..., images: _Optional[_Union[Images, _Mapping]] = ..., targets: _Optional[_Union[Images, _Mapping]] = ..., loss: _Optional[str] = ..., space: _Optional[_Union[ProjectionSpace, str]] = ..., steps: _Optional[int] = ..., seed: _Optional[int] = ..., stopped: _Optional[bool] = ...) -> None: ...

class ProjectEvent(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: ProjectProgress
    result: ProjectResult
    def __init__(self, progress: _Optional[_Union[ProjectProgress, _Mapping]] = ..., result: _Optional[_Union[ProjectResult, _Mapping]] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class Layer(_message.Message):
    __slots__ = ("index", "resolution", "group")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    index: int
    resolution: int
    group: str
    def __init__(self, index: _Optional[int] = ..., resolution: _Optional[int] = ..., group: _Optional[str] = ...) -> None: ...

class ServerLimits(_message.Message):
    __slots__ = ("max_seeds", "max_message_bytes", "max_batch", "max_projection_steps", "max_projection_targets", "max_projection_pixels", "max_projection_file_bytes", "max_projections", "max_queued_projections")
    MAX_SEEDS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    MAX_PROJECTION_STEPS_FIELD_NUMBER: _ClassVar[int]
    MAX_PROJECTION_TARGETS_FIELD_NUMBER: _ClassVar[int]
    MAX_PROJECTION_PIXELS_FIELD_NUMBER: _ClassVar[int]
    MAX_PROJECTION_FILE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_PROJECTIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_PROJECTIONS_FIELD_NUMBER: _ClassVar[int]
    max_seeds: int
    max_message_bytes: int
    max_batch: int
    max_projection_steps: int
    max_projection_targets: int
    max_projection_pixels: int
    max_projection_file_bytes: int
    max_projections: int
    max_queued_projections: int
    def __init__(self, max_seeds: _Optional[int] = ..., max_message_bytes: _Optional[int] = ..., max_batch: _Optional[int] = ..., max_projection_steps: _Optional[int] = ..., max_projection_targets: _Optional[int] = ..., max_projection_pixels: _Optional[int] = ..., max_projection_file_bytes: _Optional[int] = ..., max_projections: _Optional[int] = ..., max_queued_projections: _Optional[int] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "arch", "z_dim", "w_dim", "c_dim", "num_ws", "img_resolution", "img_channels", "layers", "backend", "device", "config_json", "w_avg", "limits", "precision", "class_names", "direction_sets")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    Z_DIM_FIELD_NUMBER: _ClassVar[int]
    W_DIM_FIELD_NUMBER: _ClassVar[int]
    C_DIM_FIELD_NUMBER: _ClassVar[int]
    NUM_WS_FIELD_NUMBER: _ClassVar[int]
    IMG_RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    IMG_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    W_AVG_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_SETS_FIELD_NUMBER: _ClassVar[int]
    name: str
    arch: str
    z_dim: int
    w_dim: int
    c_dim: int
    num_ws: int
    img_resolution: int
    img_channels: int
    layers: _containers.RepeatedCompositeFieldContainer[Layer]
    backend: str
    device: str
    config_json: str
    w_avg: Tensor
    limits: ServerLimits
    precision: str
    class_names: _containers.RepeatedScalarFieldContainer[str]
    direction_sets: _containers.RepeatedCompositeFieldContainer[DirectionSet]
    def __init__(self, name: _Optional[str] = ..., arch: _Optional[str] = ..., z_dim: _Optional[int] = ..., w_dim: _Optional[int] = ..., c_dim: _Optional[int] = ..., num_ws: _Optional[int] = ..., img_resolution: _Optional[int] = ..., img_channels: _Optional[int] = ..., layers: _Optional[_Iterable[_Union[Layer, _Mapping]]] = ..., backend: _Optional[str] = ..., device: _Optional[str] = ..., config_json: _Optional[str] = ..., w_avg: _Optional[_Union[Tensor, _Mapping]] = ..., limits: _Optional[_Union[ServerLimits, _Mapping]] = ..., precision: _Optional[str] = ..., class_names: _Optional[_Iterable[str]] = ..., direction_sets: _Optional[_Iterable[_Union[DirectionSet, _Mapping]]] = ...) -> None: ...

class DirectionSet(_message.Message):
    __slots__ = ("name", "kind", "direction_names", "values", "vectors", "layers", "model_json", "mean", "meta_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_NAMES_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    MODEL_JSON_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    META_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    direction_names: _containers.RepeatedScalarFieldContainer[str]
    values: _containers.RepeatedScalarFieldContainer[float]
    vectors: Tensor
    layers: _containers.RepeatedScalarFieldContainer[int]
    model_json: str
    mean: Tensor
    meta_json: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., direction_names: _Optional[_Iterable[str]] = ..., values: _Optional[_Iterable[float]] = ..., vectors: _Optional[_Union[Tensor, _Mapping]] = ..., layers: _Optional[_Iterable[int]] = ..., model_json: _Optional[str] = ..., mean: _Optional[_Union[Tensor, _Mapping]] = ..., meta_json: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "default_model")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    default_model: str
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., default_model: _Optional[str] = ...) -> None: ...
