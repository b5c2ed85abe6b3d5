"""The two-stage DeepFill v2 generator (`inpaint_net`), layers named as the authors' variables."""
import keras
from keras import ops

from inpaint.layers import ContextualAttention, GatedConv2D, GatedUpsample, resize_nearest
from inpaint.layers import spatial_shape

# The generator's total stride: two stride-2 convolutions, then contextual attention at half that
# resolution. Its inputs' height and width are multiples of it.
GRID = 8

# Layer rows (name, kind, width multiplier of cnum, kernel, stride, dilation, activation); kind
# 'up' = x2. Widths are conv outputs; gated layers pass on half. 'half' = cnum // 2, 'rgb' = 3.


def _layer(name, width, ksize=3, stride=1, rate=1, activation='elu'):
    """One row, with the defaults of the authors' `gen_conv` (an `_upsample` name is 'up')."""
    return (name, 'up' if name.endswith('_upsample') else 'conv', width, ksize, stride, rate,
            activation)


# Stage 1 is an encoder and a decoder; the authors' other branches repeat them under other names.
ENCODER = [
    _layer('conv1', 1, 5),
    _layer('conv2_downsample', 2, stride=2),
    _layer('conv3', 2),
    _layer('conv4_downsample', 4, stride=2),
    _layer('conv5', 4),
    _layer('conv6', 4),
] + [_layer(f'conv{index}_atrous', 4, rate=2 ** (index - 6)) for index in range(7, 11)]
DECODER = [
    _layer('conv11', 4),
    _layer('conv12', 4),
    _layer('conv13_upsample', 2),
    _layer('conv14', 2),
    _layer('conv15_upsample', 1),
    _layer('conv16', 'half'),
    _layer('conv17', 'rgb', activation=None),
]


def _variant(prefix, rows, widths=(), activations=()):
    """`rows` renamed `prefix + name`, with other width multipliers or activations by name.

    Args:
        prefix: put before each name ('x' + 'conv1' = 'xconv1').
        rows: the rows to copy.
        widths, activations: {name: value} pairs (before renaming) that differ from `rows`.
    """
    widths, activations = dict(widths), dict(activations)
    return [(prefix + name, kind, widths.get(name, mult), ksize, stride, rate,
             activations.get(name, act)) for name, kind, mult, ksize, stride, rate, act in rows]


STAGE1 = ENCODER + DECODER
# Stage 2's branches downsample to narrower widths than stage 1.
HALLUCINATION = _variant('x', ENCODER, widths={'conv2_downsample': 1, 'conv4_downsample': 2})
ATTENTION_IN = _variant('pm', ENCODER[:6], widths={'conv2_downsample': 1},
                        activations={'conv6': 'relu'})
ATTENTION_OUT = [_layer('pmconv9', 4), _layer('pmconv10', 4)]
STAGE2_OUT = _variant('all', DECODER)


def _width(multiplier, cnum):
    if multiplier == 'half':
        return cnum // 2
    return 3 if multiplier == 'rgb' else multiplier * cnum


def _make(spec, cnum, dtype):
    name, kind, mult, ksize, stride, rate, act = spec
    if kind == 'up':
        return GatedUpsample(_width(mult, cnum), name=name, dtype=dtype)
    return GatedConv2D(_width(mult, cnum), ksize, stride, rate, act, name=name, dtype=dtype)


class InpaintGenerator(keras.Model):
    """DeepFill v2 generator: coarse gated-conv network, then a refinement network with a
    dilated-conv branch and a contextual-attention branch.

    Args:
        cnum: base width (48 in the release).
        guided: the edge-guided mode (the original's `guided: True`): the user's edge lines are
            a fourth input channel, so `conv1` takes 6 channels (RGB, edge, ones, mask), not 5.
        dtype: the Keras dtype policy of every layer (default the global one), e.g.
            'mixed_bfloat16' for float32 weights and bfloat16 convolutions; contextual attention
            is float32 whatever the policy (its softmax over thousands of scores needs it).
    Call args:
        image: (B, H, W, 3) BGR in [-1, 1]; hole pixels may hold anything (they are zeroed here).
        mask: (B or 1, H, W, 1), 1 = hole. H and W must be multiples of `GRID` (8).
        edge: guided only: (B or 1, H, W, 1) edge lines, 1 = line (`imageio.edge_lines`); lines
            outside the hole are dropped here (`hole_edges`). None = no lines (an empty sketch).
    Returns:
        x_stage1, x_stage2: (B, H, W, 3) in [-1, 1]; offsets: int32 (B, H/8, W/8, 2), the
        contextual attention's offsets (`inpaint.flow.offset_flow` turns them into the original's
        `offset_flow` picture, (B, H/4, W/4, 3)).
    """

    def __init__(self, cnum=48, guided=False, name='inpaint_net', dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        # === Config ===
        self.cnum = int(cnum)
        self.guided = bool(guided)
        policy = self.dtype_policy
        self.stage1 = [_make(s, self.cnum, policy) for s in STAGE1]
        self.hallucination = [_make(s, self.cnum, policy) for s in HALLUCINATION]
        self.attention_in = [_make(s, self.cnum, policy) for s in ATTENTION_IN]
        self.contextual_attention = ContextualAttention(3, 1, rate=2, name='contextual_attention',
                                                        dtype='float32')
        self.attention_out = [_make(s, self.cnum, policy) for s in ATTENTION_OUT]
        self.stage2_out = [_make(s, self.cnum, policy) for s in STAGE2_OUT]

    def conv_layers(self):
        """All 42 convolution-owning layers in the original's order: name -> layer."""
        layers = (self.stage1 + self.hallucination + self.attention_in + self.attention_out
                  + self.stage2_out)
        return {layer.name: layer for layer in layers}

    def call(self, image, mask, edge=None):
        mask = ops.cast(mask, image.dtype)
        image = image * (1.0 - mask)  # (B, H, W, 3), the original feeds the incomplete image
        x_stage1 = self.coarse(image, mask, edge)
        x = composite(image, x_stage1, mask)  # (B, H, W, 3)
        hallucinated = self.hallucinate(x)
        features = self.attention_features(x)
        attended, offsets = self.contextual_attention(features, features,
                                                      self.attention_mask(mask, features))
        return x_stage1, self.decode(hallucinated, attended), offsets

    def coarse(self, image, mask, edge=None):
        """Stage 1: incomplete image (B, H, W, 3), mask (B|1, H, W, 1) and, guided, edge
        (B|1, H, W, 1) -> x_stage1 (B, H, W, 3)."""
        return self.coarse_decode(self.coarse_features(image, mask, edge))

    def coarse_features(self, image, mask, edge=None):
        """Stage 1 up to its first upsampling: incomplete image (B, H, W, 3), mask
        (B|1, H, W, 1) and, guided, edge (B|1, H, W, 1) -> (B, H/4, W/4, 2cnum)."""
        if edge is not None and not self.guided:
            raise ValueError(NOT_GUIDED)
        ones = ops.ones_like(image[..., :1])
        guide = [self._guide(edge, mask, ones)] if self.guided else []
        x = ops.concatenate([image] + guide + [ones, ones * mask], axis=-1)  # (B, H, W, 5 or 6)
        return _run(self.coarse_feature_layers, x)

    @staticmethod
    def _guide(edge, mask, ones):
        """The edge channel: the hole's lines, (B, H, W, 1); zeros when there is no edge."""
        if edge is None:
            return ops.zeros_like(ones)
        return hole_edges(ops.cast(edge, ones.dtype), mask) * ones  # `* ones`: (1|B) -> B

    def coarse_decode(self, features):
        """Stage 1 from its first upsampling: (B, H/4, W/4, 2cnum) -> x_stage1 (B, H, W, 3)."""
        return ops.tanh(_run(self.coarse_decode_layers, features))

    @property
    def coarse_feature_layers(self):
        """Stage 1's layers before its first upsampling (`coarse_features`)."""
        return self.stage1[:self._stage1_split()]

    @property
    def coarse_decode_layers(self):
        """Stage 1's layers from its first upsampling (`coarse_decode`)."""
        return self.stage1[self._stage1_split():]

    def _stage1_split(self):
        return next(i for i, layer in enumerate(self.stage1) if isinstance(layer, GatedUpsample))

    def hallucinate(self, x):
        """The dilated-conv branch of stage 2: (B, H, W, 3) -> (B, H/4, W/4, 2cnum)."""
        return _run(self.hallucination, x)

    def attention_features(self, x):
        """The attention branch's input: (B, H, W, 3) -> (B, H/4, W/4, 2cnum)."""
        return _run(self.attention_in, x)

    @staticmethod
    def attention_mask(mask, features):
        """The mask at the features' size (B|1, H/4, W/4, 1), align corners as the original."""
        return resize_nearest(mask, spatial_shape(features))

    def decode(self, hallucinated, attended):
        """Everything after contextual attention: (B, H/4, W/4, 2cnum) x 2 -> x_stage2 (B, H, W, 3)."""
        attended = _run(self.attention_out, attended)
        x = ops.concatenate([hallucinated, attended], axis=-1)  # (B, H/4, W/4, 4cnum)
        return ops.tanh(_run(self.stage2_out, x))

    def attention_reach(self, needed):
        """Attention outputs that reach the needed x_stage2 pixels, derived from the layers after
        the attention: bool NumPy (H, W) -> (H/4, W/4)."""
        return reach(self.attention_out + self.stage2_out, needed, _quarter(needed.shape))

    def stage1_reach(self, needed):
        """Input pixels that reach the needed x_stage1 pixels: bool NumPy (H, W) -> (H, W)."""
        return self.coarse_features_reach(self.coarse_decode_reach(needed), needed.shape)

    def coarse_decode_reach(self, needed):
        """Outputs of `coarse_features` that reach the needed x_stage1 pixels:
        bool NumPy (H, W) -> (H/4, W/4)."""
        return reach(self.coarse_decode_layers, needed, _quarter(needed.shape))

    def coarse_features_reach(self, needed, size):
        """Input pixels (H, W) = size that reach the needed outputs (H/4, W/4) of
        `coarse_features`."""
        return reach(self.coarse_feature_layers, needed, size)

    def hallucination_reach(self, needed, size):
        """Stage-2 input pixels (H, W) = size that reach the needed outputs (H/4, W/4) of the
        dilated-conv branch."""
        return reach(self.hallucination, needed, size)

    def get_config(self):
        return {'cnum': self.cnum, 'guided': self.guided, 'name': self.name,
                'dtype': keras.dtype_policies.serialize(self.dtype_policy)}


NOT_GUIDED = ('an edge was given, but this generator is not guided (its conv1 takes RGB, ones and '
              'mask); use a guided checkpoint, or no edge')


def hole_edges(edge, mask):
    """The original's rule that guides only the hole: `edge * mask`, the lines inside the hole.

    Args:
        edge: (B|1, H, W, 1) 0/1 edge lines; mask: (B|1, H, W, 1), 1 = hole. NumPy arrays or
            backend tensors of one float dtype.
    Returns:
        (B, H, W, 1), 1 on the hole's lines.
    """
    return edge * mask


def reach(layers, needed, input_size):
    """Input pixels of a layer sequence that reach its needed outputs (each layer's
    `input_reach`, in reverse): bool NumPy output map -> (input_size).

    Args:
        layers: GatedConv2D / GatedUpsample sequence, applied in order to an input of
            `input_size` (H, W).
        needed: bool (h, w), the sequence's output pixels that matter.
    """
    sizes = [tuple(input_size)]
    for layer in layers[:-1]:
        sizes.append(tuple(layer.compute_output_shape((1,) + sizes[-1] + (1,))[1:3]))
    for layer, size in zip(reversed(layers), reversed(sizes)):
        needed = layer.input_reach(needed, size)
    return needed


def _quarter(size):
    return tuple(n // 4 for n in size)


def composite(image, filled, mask):
    """The completed image: `filled` in the holes, `image` elsewhere, as the original composes it
    (`filled * mask + image * (1 - mask)`). The one composite of the project: the generator's
    stage 1, training's discriminator input and summaries, and inference's original mode.

    Args:
        image, filled: (B, H, W, C), NumPy arrays or backend tensors of one float dtype.
        mask: (1 or B, H, W, 1), 1 = hole, 0 or 1 only (so `image` need not have its holes zeroed:
            `image * (1 - mask)` is the same whether they are or not).
    """
    return filled * mask + image * (1.0 - mask)


def _run(layers, x):
    for layer in layers:
        x = layer(x)
    return x


def build_generator(cnum=48, guided=False, dtype=None):
    """Creates an `InpaintGenerator` (arguments as its) with its weights built."""
    return _built(InpaintGenerator(cnum, guided, dtype=dtype))


def with_dtype(generator, dtype):
    """The same generator, configuration and weights, built with the dtype policy `dtype`."""
    other = _built(InpaintGenerator(**{**generator.get_config(), 'dtype': dtype}))
    other.set_weights(generator.get_weights())
    return other


def _built(generator):
    """Builds the weights with a symbolic 64x64 call (no compute, so it is quick on JAX too)."""
    edge = (keras.KerasTensor((1, 64, 64, 1)),) if generator.guided else ()
    generator(keras.KerasTensor((1, 64, 64, 3)), keras.KerasTensor((1, 64, 64, 1)), *edge)
    return generator
