package org.movinet.demo.core;

import java.nio.ByteBuffer;

/**
 * Affine 8-bit quantization as TFLite defines it: real = scale * (q - zeroPoint).
 *
 * <p>Rounding is half up ({@code floor(x + 0.5)}), then clamped to the type's range; the
 * arithmetic is float32 in the order written here, so another float32 implementation of the same
 * formula gives the same bytes.
 */
public final class Quantization {
    private Quantization() {}

    /** Writes {@code real} into {@code out} (positions 0..n-1) as {@code info}'s 8-bit type. */
    public static void quantize(float[] real, TensorInfo info, ByteBuffer out) {
        check(info);
        boolean signed = info.type == TensorInfo.INT8;
        int low = signed ? -128 : 0;
        int high = signed ? 127 : 255;
        for (int i = 0; i < real.length; i++) {
            int q = (int) Math.floor(real[i] / info.scale + 0.5f) + info.zeroPoint;
            q = q < low ? low : (q > high ? high : q);
            out.put(i, (byte) q);
        }
    }

    /** Reads {@code out.length} values of {@code info}'s 8-bit type from {@code in} as reals. */
    public static void dequantize(ByteBuffer in, TensorInfo info, float[] out) {
        check(info);
        boolean signed = info.type == TensorInfo.INT8;
        for (int i = 0; i < out.length; i++) {
            int q = signed ? in.get(i) : in.get(i) & 0xFF;
            out[i] = info.scale * (q - info.zeroPoint);
        }
    }

    /**
     * Re-encodes {@code buffer} in place from {@code from}'s quantization to {@code to}'s (same
     * 8-bit type and size), e.g. a state output whose scale differs from the state input's.
     */
    public static void requantize(ByteBuffer buffer, TensorInfo from, TensorInfo to) {
        check(from);
        check(to);
        if (from.type != to.type || from.byteSize != to.byteSize) {
            throw new IllegalArgumentException("cannot requantize " + from + " to " + to
                    + ", expected the same 8-bit type and size");
        }
        boolean signed = to.type == TensorInfo.INT8;
        int low = signed ? -128 : 0;
        int high = signed ? 127 : 255;
        for (int i = 0; i < to.byteSize; i++) {
            int q = signed ? buffer.get(i) : buffer.get(i) & 0xFF;
            float real = from.scale * (q - from.zeroPoint);
            int r = (int) Math.floor(real / to.scale + 0.5f) + to.zeroPoint;
            r = r < low ? low : (r > high ? high : r);
            buffer.put(i, (byte) r);
        }
    }

    private static void check(TensorInfo info) {
        if (!info.isQuantized8()) {
            throw new IllegalArgumentException(info + " is not an affine-quantized uint8/int8 "
                    + "tensor");
        }
    }
}
