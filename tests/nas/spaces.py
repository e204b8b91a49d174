"""Small search spaces shared by the NAS tests."""
from movinet_tf.nas.space import SearchSpace


def small_space():
    """Two choices almost everywhere, all 7 kernels, up to 3 layers per block."""
    return SearchSpace(
        stem_widths=(8, 16), block_widths=((8, 16), (16, 24), (16, 24), (24, 32), (32, 40)),
        max_layers=(2, 2, 2, 2, 3), expand_ratios=("2", "8/3"), head_widths=(24, 32),
        classifier_widths=(24, 32))
