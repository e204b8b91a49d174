package org.movinet.demo.core;

import java.nio.ByteBuffer;

/**
 * Native methods of the JNI bridge ({@code android_demo/jni/tflite_jni.c}) to the TFLite C API.
 *
 * <p>Handles are raw native pointers held as {@code long}. The caller loads the native libraries
 * first: on Android {@code System.loadLibrary("litert-lm")} then {@code
 * System.loadLibrary("tflitejni")}; on a desktop JVM {@code System.load} with absolute paths.
 * Buffers are direct {@link ByteBuffer}s in native byte order whose capacity equals the tensor's
 * byte size. Use {@link SignatureRunner} rather than these methods directly.
 */
public final class TfLiteBridge {
    private TfLiteBridge() {}

    /** Version string of the TFLite runtime, e.g. "2.23.0". */
    public static native String version();

    /**
     * Creates model, XNNPACK delegate, interpreter options (thread count, delegate) and
     * interpreter.
     *
     * @param model direct buffer holding the .tflite flatbuffer; must outlive the handles.
     * @param numThreads CPU threads for the interpreter and its XNNPACK delegate.
     * @return {model, options, interpreter, delegate} handles.
     */
    static native long[] createInterpreter(ByteBuffer model, int numThreads);

    static native String[] signatureKeys(long interpreter);

    /** Returns a signature runner whose tensors are already allocated. */
    static native long createSignatureRunner(long interpreter, String signatureKey);

    static native String[] inputNames(long runner);

    static native String[] outputNames(long runner);

    /** Returns the signature's input ({@code isInput}) or output tensor of that name. */
    static native long tensor(long runner, String name, boolean isInput);

    /**
     * Returns {type, byteSize, rank, scaleBits, zeroPoint, dim0, dim1, ...}; scaleBits is
     * {@code Float.floatToIntBits} of the quantization scale (0: not quantized).
     */
    static native int[] tensorInfo(long tensor);

    static native void copyToTensor(long tensor, ByteBuffer source);

    static native void copyFromTensor(long tensor, ByteBuffer destination);

    static native void invoke(long runner);

    static native void deleteAll(
            long runner, long interpreter, long options, long delegate, long model);
}
