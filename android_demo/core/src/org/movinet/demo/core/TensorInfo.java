package org.movinet.demo.core;

import java.util.Arrays;

/** Type, shape, byte size and affine quantization of one signature tensor. */
public final class TensorInfo {
    /** TfLiteType codes used here (tensorflow/lite/core/c/c_api_types.h). */
    public static final int FLOAT32 = 1;
    public static final int INT32 = 2;
    public static final int UINT8 = 3;
    public static final int INT8 = 9;
    public static final int FLOAT16 = 10;

    public final String name;
    public final int type;
    public final int byteSize;
    public final int[] shape;
    /** real = scale * (q - zeroPoint); scale 0 means the tensor is not quantized. */
    public final float scale;
    public final int zeroPoint;

    /** From the bridge's {type, byteSize, rank, scaleBits, zeroPoint, dims...}. */
    TensorInfo(String name, int[] raw) {
        this(name, raw[0], raw[1], Arrays.copyOfRange(raw, 5, 5 + raw[2]),
                Float.intBitsToFloat(raw[3]), raw[4]);
    }

    public TensorInfo(String name, int type, int byteSize, int[] shape, float scale,
            int zeroPoint) {
        this.name = name;
        this.type = type;
        this.byteSize = byteSize;
        this.shape = shape.clone();
        this.scale = scale;
        this.zeroPoint = zeroPoint;
    }

    /** Whether the tensor holds 8-bit affine-quantized values (uint8 or int8, scale > 0). */
    public boolean isQuantized8() {
        return (type == UINT8 || type == INT8) && scale > 0;
    }

    /** Same type and byte size, and the same quantization: bytes can be copied as they are. */
    public boolean sameEncoding(TensorInfo other) {
        return type == other.type && byteSize == other.byteSize
                && Float.floatToIntBits(scale) == Float.floatToIntBits(other.scale)
                && zeroPoint == other.zeroPoint;
    }

    /** Readable type name, e.g. "FLOAT32", or "TYPE_7" for others. */
    public String typeName() {
        switch (type) {
            case FLOAT32: return "FLOAT32";
            case INT32: return "INT32";
            case UINT8: return "UINT8";
            case INT8: return "INT8";
            case FLOAT16: return "FLOAT16";
            default: return "TYPE_" + type;
        }
    }

    @Override
    public String toString() {
        String text = "'" + name + "' " + typeName() + Arrays.toString(shape);
        if (scale > 0) {
            text += " (scale " + scale + ", zero point " + zeroPoint + ")";
        }
        return text;
    }
}
