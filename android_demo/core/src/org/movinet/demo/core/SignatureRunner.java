package org.movinet.demo.core;

import java.io.Closeable;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * One TFLite interpreter (CPU, XNNPACK delegate) and one of its signatures, through the JNI
 * bridge.
 *
 * <p>Inputs and outputs are addressed by their signature names, never by tensor index (the raw
 * output order of an exported MoViNet is arbitrary). Not thread-safe: callers serialise access.
 */
public final class SignatureRunner implements Closeable {
    private final ByteBuffer model;
    private final int numThreads;
    private final List<String> inputNames;
    private final List<String> outputNames;
    private long modelHandle;
    private long optionsHandle;
    private long interpreterHandle;
    private long delegateHandle;
    private long runnerHandle;

    /**
     * Creates the interpreter with {@code numThreads} CPU threads and opens a signature.
     *
     * @param model direct buffer with the .tflite file (e.g. from {@link #mapFile}); it is kept
     *     alive by this object.
     * @param numThreads number of CPU threads, at least 1.
     * @param signatureKey signature to run, e.g. "serving_default".
     * @throws IllegalArgumentException if the model has no such signature or numThreads < 1.
     */
    public SignatureRunner(ByteBuffer model, int numThreads, String signatureKey) {
        if (numThreads < 1) {
            throw new IllegalArgumentException("numThreads is " + numThreads + ", expected >= 1");
        }
        if (model == null || !model.isDirect()) {
            throw new IllegalArgumentException("model must be a direct or mapped ByteBuffer");
        }
        this.model = model;
        this.numThreads = numThreads;
        long[] handles = TfLiteBridge.createInterpreter(model, numThreads);
        modelHandle = handles[0];
        optionsHandle = handles[1];
        interpreterHandle = handles[2];
        delegateHandle = handles[3];
        List<String> keys = Arrays.asList(TfLiteBridge.signatureKeys(interpreterHandle));
        if (!keys.contains(signatureKey)) {
            close();
            throw new IllegalArgumentException(
                    "model has no signature '" + signatureKey + "', it has " + keys);
        }
        runnerHandle = TfLiteBridge.createSignatureRunner(interpreterHandle, signatureKey);
        inputNames = Collections.unmodifiableList(
                Arrays.asList(TfLiteBridge.inputNames(runnerHandle)));
        outputNames = Collections.unmodifiableList(
                Arrays.asList(TfLiteBridge.outputNames(runnerHandle)));
    }

    /** Maps a .tflite file read-only into memory (no copy). */
    public static ByteBuffer mapFile(java.io.File file) throws java.io.IOException {
        java.io.RandomAccessFile raf = new java.io.RandomAccessFile(file, "r");
        try {
            java.nio.channels.FileChannel channel = raf.getChannel();
            return channel.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, 0, channel.size());
        } finally {
            raf.close();
        }
    }

    public ByteBuffer model() {
        return model;
    }

    public int numThreads() {
        return numThreads;
    }

    public List<String> inputNames() {
        return inputNames;
    }

    public List<String> outputNames() {
        return outputNames;
    }

    /** Native handle of the input tensor {@code name}; valid until {@link #close}. */
    public long inputTensor(String name) {
        if (!inputNames.contains(name)) {
            throw new IllegalArgumentException(
                    "signature has no input '" + name + "', inputs are " + inputNames);
        }
        return TfLiteBridge.tensor(checkOpen(), name, true);
    }

    /** Native handle of the output tensor {@code name}; valid until {@link #close}. */
    public long outputTensor(String name) {
        if (!outputNames.contains(name)) {
            throw new IllegalArgumentException(
                    "signature has no output '" + name + "', outputs are " + outputNames);
        }
        return TfLiteBridge.tensor(checkOpen(), name, false);
    }

    public TensorInfo info(String name, long tensor) {
        return new TensorInfo(name, TfLiteBridge.tensorInfo(tensor));
    }

    /** Copies a direct buffer of exactly the tensor's byte size into an input tensor. */
    public void copyIn(long tensor, ByteBuffer source) {
        checkOpen();
        TfLiteBridge.copyToTensor(tensor, source);
    }

    /** Copies an output tensor into a direct buffer of exactly its byte size. */
    public void copyOut(long tensor, ByteBuffer destination) {
        checkOpen();
        TfLiteBridge.copyFromTensor(tensor, destination);
    }

    public void invoke() {
        TfLiteBridge.invoke(checkOpen());
    }

    private long checkOpen() {
        if (runnerHandle == 0) {
            throw new IllegalStateException("SignatureRunner is closed");
        }
        return runnerHandle;
    }

    /** Frees the native interpreter; idempotent. */
    @Override
    public void close() {
        if (modelHandle != 0) {
            TfLiteBridge.deleteAll(
                    runnerHandle, interpreterHandle, optionsHandle, delegateHandle, modelHandle);
        }
        runnerHandle = 0;
        interpreterHandle = 0;
        delegateHandle = 0;
        optionsHandle = 0;
        modelHandle = 0;
    }
}
