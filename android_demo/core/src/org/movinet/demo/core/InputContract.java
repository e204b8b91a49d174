package org.movinet.demo.core;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What the model expects of its input frames, read from the {@code input_contract} key of the
 * exporter's manifest ({@code <model>.json}, bundled as {@code model_manifest.json}):
 *
 * <pre>
 * "input_contract": {"frame_rate": 12.5, "image_size": [172, 172], "min_image_size": 172,
 *                    "value_range": [0.0, 1.0], "channels": "RGB", "dtype": "float32",
 *                    "quantization": null}   // or {"scale": s, "zero_point": z} for uint8
 * </pre>
 *
 * <p>{@link #check} compares it with the model's own image tensor, so a manifest that belongs to
 * another model is refused rather than silently followed.
 *
 * <p><b>Defaults.</b> A manifest without the key (older exports), or no manifest at all, gives
 * {@link #DEFAULT_FRAME_RATE} fps, the model's own input size, dtype and quantization, value
 * range [0, 1], and the manifest's top-level {@code min_image_size} if present, else the crop
 * size. A null {@code frame_rate} also falls back to {@link #DEFAULT_FRAME_RATE}. In every such
 * case {@link #defaultsUsed} says what was assumed; the app logs it.
 */
public final class InputContract {
    /** Frames per second fed when the contract does not say: the rate of the published
     * Kinetics MoViNet streams (25 fps video, every 5th frame). */
    public static final double DEFAULT_FRAME_RATE = 5.0;

    public final double frameRate;
    public final int imageHeight;
    public final int imageWidth;
    public final int minImageSize;
    public final float valueLow;
    public final float valueHigh;
    public final String channels;
    /** "float32", "uint8" or "int8". */
    public final String dtype;
    /** Quantization of an 8-bit image input; scale 0 for float32. */
    public final float scale;
    public final int zeroPoint;
    private final String defaultsUsed;

    private InputContract(double frameRate, int imageHeight, int imageWidth, int minImageSize,
            float valueLow, float valueHigh, String channels, String dtype, float scale,
            int zeroPoint, String defaultsUsed) {
        this.frameRate = frameRate;
        this.imageHeight = imageHeight;
        this.imageWidth = imageWidth;
        this.minImageSize = minImageSize;
        this.valueLow = valueLow;
        this.valueHigh = valueHigh;
        this.channels = channels;
        this.dtype = dtype;
        this.scale = scale;
        this.zeroPoint = zeroPoint;
        this.defaultsUsed = defaultsUsed;
    }

    /**
     * Reads the contract of a model.
     *
     * @param manifestJson the manifest text, or null when the APK carries none.
     * @param image the model's image input tensor (for the defaults and the check).
     * @throws IllegalArgumentException if the manifest is not JSON, a contract field is missing
     *     or malformed, or the contract disagrees with the model (message names the field).
     */
    public static InputContract read(String manifestJson, TensorInfo image) {
        Map<String, Object> manifest = null;
        if (manifestJson != null) {
            Object parsed = Json.parse(manifestJson);
            if (!(parsed instanceof Map)) {
                throw new IllegalArgumentException("manifest is not a JSON object");
            }
            manifest = asMap(parsed, "manifest");
        }
        InputContract contract;
        if (manifest != null && manifest.containsKey("input_contract")) {
            contract = fromJson(asMap(manifest.get("input_contract"), "input_contract"));
        } else {
            contract = defaults(manifest, image, manifest == null
                    ? "no manifest in the app" : "the manifest has no input_contract");
        }
        contract.check(image);
        return contract;
    }

    private static InputContract defaults(Map<String, Object> manifest, TensorInfo image,
            String why) {
        int height = image.shape.length == 5 ? image.shape[2] : 0;
        int width = image.shape.length == 5 ? image.shape[3] : 0;
        int minSize = Math.min(height, width);
        String minSource = "the crop size";
        if (manifest != null && manifest.get("min_image_size") instanceof Double) {
            minSize = (int) (double) (Double) manifest.get("min_image_size");
            minSource = "the manifest's min_image_size";
        }
        String dtype = image.type == TensorInfo.UINT8 ? "uint8"
                : image.type == TensorInfo.INT8 ? "int8" : "float32";
        String note = String.format(Locale.US, "%s; using defaults: %.1f fps, %dx%d %s input "
                + "from the model, min_image_size %d (%s), value range [0, 1], RGB", why,
                DEFAULT_FRAME_RATE, height, width, dtype, minSize, minSource);
        return new InputContract(DEFAULT_FRAME_RATE, height, width, minSize, 0f, 1f, "RGB",
                dtype, image.scale, image.zeroPoint, note);
    }

    private static InputContract fromJson(Map<String, Object> c) {
        String note = null;
        double frameRate;
        Object rate = required(c, "frame_rate", true);
        if (rate == null) {
            frameRate = DEFAULT_FRAME_RATE;
            note = String.format(Locale.US, "input_contract.frame_rate is null (unknown); "
                    + "using the default %.1f fps", DEFAULT_FRAME_RATE);
        } else {
            frameRate = asNumber(rate, "input_contract.frame_rate");
            if (!(frameRate > 0) || Double.isInfinite(frameRate)) {
                throw new IllegalArgumentException("input_contract.frame_rate is " + rate
                        + ", expected a positive number of frames per second");
            }
        }
        List<Object> size = asList(required(c, "image_size", false), "input_contract.image_size",
                2);
        List<Object> range = asList(required(c, "value_range", false),
                "input_contract.value_range", 2);
        int height = asInt(size.get(0), "input_contract.image_size[0]");
        int width = asInt(size.get(1), "input_contract.image_size[1]");
        int minSize = asInt(required(c, "min_image_size", false), "input_contract.min_image_size");
        float low = (float) asNumber(range.get(0), "input_contract.value_range[0]");
        float high = (float) asNumber(range.get(1), "input_contract.value_range[1]");
        if (!(high > low)) {
            throw new IllegalArgumentException("input_contract.value_range is " + range
                    + ", expected [low, high] with low < high");
        }
        String channels = asString(required(c, "channels", false), "input_contract.channels");
        String dtype = asString(required(c, "dtype", false), "input_contract.dtype");
        Object quant = required(c, "quantization", true);
        float scale = 0f;
        int zeroPoint = 0;
        if (quant != null) {
            Map<String, Object> q = asMap(quant, "input_contract.quantization");
            scale = (float) asNumber(required(q, "scale", false),
                    "input_contract.quantization.scale");
            zeroPoint = asInt(required(q, "zero_point", false),
                    "input_contract.quantization.zero_point");
            if (!(scale > 0)) {
                throw new IllegalArgumentException("input_contract.quantization.scale is "
                        + scale + ", expected > 0");
            }
        }
        return new InputContract(frameRate, height, width, minSize, low, high, channels, dtype,
                scale, zeroPoint, note);
    }

    /** Refuses a contract the model (or this app) cannot honour; the message names the field. */
    void check(TensorInfo image) {
        int[] s = image.shape;
        if (s.length != 5 || s[0] != 1 || s[1] != 1 || s[4] != 3) {
            throw new IllegalArgumentException("input " + image
                    + " is not a single RGB frame, expected [1, 1, H, W, 3]");
        }
        if (s[2] != imageHeight || s[3] != imageWidth) {
            throw new IllegalArgumentException("input_contract.image_size is [" + imageHeight
                    + ", " + imageWidth + "] but the model's input " + image + " is " + s[2]
                    + "x" + s[3]);
        }
        if (minImageSize < Math.min(imageHeight, imageWidth)) {
            throw new IllegalArgumentException("input_contract.min_image_size is " + minImageSize
                    + ", expected at least the crop's short side "
                    + Math.min(imageHeight, imageWidth));
        }
        if (!channels.equals("RGB")) {
            throw new IllegalArgumentException("input_contract.channels is '" + channels
                    + "', this app feeds RGB only");
        }
        int expectedType = dtype.equals("float32") ? TensorInfo.FLOAT32
                : dtype.equals("uint8") ? TensorInfo.UINT8
                : dtype.equals("int8") ? TensorInfo.INT8 : -1;
        if (expectedType < 0) {
            throw new IllegalArgumentException("input_contract.dtype is '" + dtype
                    + "', expected float32, uint8 or int8");
        }
        if (expectedType != image.type) {
            throw new IllegalArgumentException("input_contract.dtype is " + dtype
                    + " but the model's input is " + image);
        }
        if (expectedType == TensorInfo.FLOAT32) {
            if (scale != 0f) {
                throw new IllegalArgumentException("input_contract.quantization is set for a "
                        + "float32 input, expected null");
            }
            return;
        }
        if (!image.isQuantized8()) {
            throw new IllegalArgumentException("the model's input " + image + " is 8-bit but "
                    + "not affine-quantized; cannot map pixels to it");
        }
        if (Math.abs(scale - image.scale) > 1e-6f * image.scale || zeroPoint != image.zeroPoint) {
            throw new IllegalArgumentException("input_contract.quantization is {scale " + scale
                    + ", zero_point " + zeroPoint + "} but the model's input is " + image);
        }
    }

    /** Null when every value came from the manifest; else what was assumed (to be logged). */
    public String defaultsUsed() {
        return defaultsUsed;
    }

    /**
     * Maps preprocessed pixels in [0, 1] (as {@link Preprocess} writes them) to the contract's
     * value range, in place: v -> low + (high - low) * v. Identity for [0, 1].
     */
    public void toValueRange(float[] unit) {
        if (valueLow == 0f && valueHigh == 1f) {
            return;
        }
        float span = valueHigh - valueLow;
        for (int i = 0; i < unit.length; i++) {
            unit[i] = valueLow + span * unit[i];
        }
    }

    /** Period between model frames, in nanoseconds. */
    public long framePeriodNanos() {
        return (long) (1e9 / frameRate);
    }

    @Override
    public String toString() {
        String text = String.format(Locale.US, "%.3g fps, %dx%d (short side %d), %s in [%s, %s]",
                frameRate, imageHeight, imageWidth, minImageSize, dtype, valueLow, valueHigh);
        if (scale > 0) {
            text += " (scale " + scale + ", zero point " + zeroPoint + ")";
        }
        return text;
    }

    // ---- typed access with messages that name the field ----

    private static Object required(Map<String, Object> map, String key, boolean nullable) {
        if (!map.containsKey(key)) {
            throw new IllegalArgumentException("input_contract has no '" + key + "'");
        }
        Object value = map.get(key);
        if (value == null && !nullable) {
            throw new IllegalArgumentException("input_contract." + key + " is null");
        }
        return value;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> asMap(Object value, String what) {
        if (!(value instanceof Map)) {
            throw new IllegalArgumentException(what + " is " + value + ", expected an object");
        }
        return (Map<String, Object>) value;
    }

    @SuppressWarnings("unchecked")
    private static List<Object> asList(Object value, String what, int length) {
        if (!(value instanceof List) || ((List<Object>) value).size() != length) {
            throw new IllegalArgumentException(what + " is " + value + ", expected a list of "
                    + length);
        }
        return (List<Object>) value;
    }

    private static double asNumber(Object value, String what) {
        if (!(value instanceof Double)) {
            throw new IllegalArgumentException(what + " is " + value + ", expected a number");
        }
        return (Double) value;
    }

    private static int asInt(Object value, String what) {
        double number = asNumber(value, what);
        if (number != Math.rint(number) || Math.abs(number) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(what + " is " + value + ", expected an integer");
        }
        return (int) number;
    }

    private static String asString(Object value, String what) {
        if (!(value instanceof String)) {
            throw new IllegalArgumentException(what + " is " + value + ", expected a string");
        }
        return (String) value;
    }
}
