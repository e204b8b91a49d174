"""MoViNet architectures and the model builder."""
from movinet_tf.models.movinet import (BackboneOptions, MovinetBackbone, MovinetClassifier,
                                       build_model, variant_defaults)
from movinet_tf.models.specs import (MODEL_IDS, MODEL_SPECS, BlockSpec, LayerSpec, ModelSpec,
                                     format_spec, get_spec, parse_spec)

__all__ = ["BackboneOptions", "MODEL_IDS", "MODEL_SPECS", "BlockSpec", "LayerSpec", "ModelSpec",
           "MovinetBackbone", "MovinetClassifier", "build_model", "format_spec", "get_spec",
           "parse_spec", "variant_defaults"]
