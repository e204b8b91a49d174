package org.movinet.demo.core;

import java.util.Arrays;

/** Type, shape and byte size of one signature tensor. */
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

    TensorInfo(String name, int[] raw) {
        this.name = name;
        this.type = raw[0];
        this.byteSize = raw[1];
        this.shape = Arrays.copyOfRange(raw, 3, 3 + raw[2]);
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
        return "'" + name + "' " + typeName() + Arrays.toString(shape);
    }
}
