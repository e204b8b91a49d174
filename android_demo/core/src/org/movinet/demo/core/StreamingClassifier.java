package org.movinet.demo.core;

import java.io.Closeable;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.TreeSet;

/**
 * Runs a single-frame streaming MoViNet TFLite model, carrying its states from frame to frame.
 *
 * <p>The model has one signature ({@code serving_default}) with an input {@code image}
 * [1, 1, H, W, 3] plus one input per state, and outputs {@code logits} [1, num_classes] plus the
 * same state names. The image is float32, or uint8/int8 with affine quantization (a full-integer
 * model): {@link #classify} takes real values either way and quantizes them with the tensor's own
 * scale and zero point. Quantized logits are dequantized the same way. States are discovered from
 * the signature and paired by name: every state input must have a same-named output of the same
 * type and byte size; where the output's quantization differs from the input's, the state is
 * re-encoded ({@link Quantization#requantize}) before it is fed back.
 *
 * <p>Each state has two direct buffers: {@code current} is copied into the interpreter before a
 * call and the outputs are copied into {@code next}; the two are swapped only after the whole call
 * succeeded, so a failed frame leaves the states as they were. States live in Java, so changing
 * the thread count (which recreates the interpreter) keeps the clip's context.
 *
 * <p>All public methods are synchronized: the UI thread may call {@link #reset} or
 * {@link #setNumThreads} while a background thread classifies.
 */
public final class StreamingClassifier implements Closeable {
    public static final String SIGNATURE_KEY = "serving_default";
    public static final String IMAGE_INPUT = "image";
    public static final String LOGITS_OUTPUT = "logits";

    private final ByteBuffer model;
    private final List<String> stateNames;
    private final ByteBuffer[] current;
    private final ByteBuffer[] next;
    private final ByteBuffer image;
    private final FloatBuffer imageFloats;
    private final ByteBuffer logits;
    private final FloatBuffer logitsFloats;
    private final TensorInfo imageInfo;
    private final TensorInfo logitsInfo;
    private final TensorInfo[] stateInInfo;
    private final TensorInfo[] stateOutInfo;
    private final int height;
    private final int width;
    private final int numClasses;
    private final byte[] zeros;

    private SignatureRunner runner;
    private long imageTensor;
    private long logitsTensor;
    private long[] stateInputTensors;
    private long[] stateOutputTensors;
    private long lastInferenceNanos;
    private long framesSinceReset;

    /**
     * Opens the model and allocates zeroed states.
     *
     * @param model direct or mapped buffer with the .tflite file; kept alive by this object.
     * @param numThreads CPU threads, at least 1.
     * @throws IllegalArgumentException if the signature does not look like a single-frame
     *     streaming MoViNet (message names the offending tensor and what was expected).
     */
    public StreamingClassifier(ByteBuffer model, int numThreads) {
        this.model = model;
        runner = new SignatureRunner(model, numThreads, SIGNATURE_KEY);
        try {
            stateNames = pairStates(runner.inputNames(), runner.outputNames());
            imageTensor = runner.inputTensor(IMAGE_INPUT);
            logitsTensor = runner.outputTensor(LOGITS_OUTPUT);
            imageInfo = runner.info(IMAGE_INPUT, imageTensor);
            int[] s = imageInfo.shape;
            boolean imageOk = imageInfo.type == TensorInfo.FLOAT32 || imageInfo.isQuantized8();
            if (!imageOk || s.length != 5 || s[0] != 1 || s[1] != 1 || s[4] != 3) {
                throw new IllegalArgumentException("input " + imageInfo
                        + " is not a single RGB frame, expected FLOAT32[1, 1, H, W, 3] or"
                        + " quantized UINT8/INT8[1, 1, H, W, 3]");
            }
            height = s[2];
            width = s[3];
            logitsInfo = runner.info(LOGITS_OUTPUT, logitsTensor);
            boolean logitsOk = logitsInfo.type == TensorInfo.FLOAT32 || logitsInfo.isQuantized8();
            if (!logitsOk || logitsInfo.shape.length != 2 || logitsInfo.shape[0] != 1) {
                throw new IllegalArgumentException("output " + logitsInfo
                        + " is not logits, expected FLOAT32 or quantized UINT8/INT8"
                        + "[1, num_classes]");
            }
            numClasses = logitsInfo.shape[1];
            image = direct(imageInfo.byteSize);
            imageFloats = image.asFloatBuffer();
            logits = direct(logitsInfo.byteSize);
            logitsFloats = logits.asFloatBuffer();

            current = new ByteBuffer[stateNames.size()];
            next = new ByteBuffer[stateNames.size()];
            stateInInfo = new TensorInfo[stateNames.size()];
            stateOutInfo = new TensorInfo[stateNames.size()];
            int largest = 0;
            bindStateTensors();
            for (int i = 0; i < stateNames.size(); i++) {
                String name = stateNames.get(i);
                TensorInfo in = runner.info(name, stateInputTensors[i]);
                TensorInfo out = runner.info(name, stateOutputTensors[i]);
                if (in.type != out.type || in.byteSize != out.byteSize
                        || (!in.sameEncoding(out) && !in.isQuantized8())) {
                    throw new IllegalArgumentException("state input " + in
                            + " does not match its output " + out
                            + ", expected the same type and shape");
                }
                stateInInfo[i] = in;
                stateOutInfo[i] = out;
                current[i] = direct(in.byteSize);
                next[i] = direct(in.byteSize);
                largest = Math.max(largest, in.byteSize);
            }
            zeros = new byte[largest];
            reset();
        } catch (RuntimeException e) {
            runner.close();
            throw e;
        }
    }

    /**
     * Returns the state names (sorted), after checking that inputs and outputs pair up by name.
     *
     * @throws IllegalArgumentException naming the unpaired states, or the missing image/logits.
     */
    static List<String> pairStates(List<String> inputNames, List<String> outputNames) {
        if (!inputNames.contains(IMAGE_INPUT)) {
            throw new IllegalArgumentException(
                    "signature has no input '" + IMAGE_INPUT + "', inputs are " + inputNames);
        }
        if (!outputNames.contains(LOGITS_OUTPUT)) {
            throw new IllegalArgumentException(
                    "signature has no output '" + LOGITS_OUTPUT + "', outputs are " + outputNames);
        }
        TreeSet<String> inputs = new TreeSet<String>(inputNames);
        inputs.remove(IMAGE_INPUT);
        TreeSet<String> outputs = new TreeSet<String>(outputNames);
        outputs.remove(LOGITS_OUTPUT);
        TreeSet<String> inputsOnly = new TreeSet<String>(inputs);
        inputsOnly.removeAll(outputs);
        TreeSet<String> outputsOnly = new TreeSet<String>(outputs);
        outputsOnly.removeAll(inputs);
        if (!inputsOnly.isEmpty() || !outputsOnly.isEmpty()) {
            throw new IllegalArgumentException("states do not pair up by name: inputs without a"
                    + " same-named output " + inputsOnly + ", outputs without a same-named input "
                    + outputsOnly);
        }
        return Collections.unmodifiableList(new ArrayList<String>(inputs));
    }

    private void bindStateTensors() {
        stateInputTensors = new long[stateNames.size()];
        stateOutputTensors = new long[stateNames.size()];
        for (int i = 0; i < stateNames.size(); i++) {
            stateInputTensors[i] = runner.inputTensor(stateNames.get(i));
            stateOutputTensors[i] = runner.outputTensor(stateNames.get(i));
        }
    }

    private static ByteBuffer direct(int bytes) {
        return ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
    }

    /** The model's image input tensor: type, shape and quantization. */
    public TensorInfo imageInfo() {
        return imageInfo;
    }

    /** Model input height H. */
    public int inputHeight() {
        return height;
    }

    /** Model input width W. */
    public int inputWidth() {
        return width;
    }

    public int numClasses() {
        return numClasses;
    }

    /** State names, sorted; the image and logits are not states. */
    public List<String> stateNames() {
        return stateNames;
    }

    /** Total bytes of one copy of the states. */
    public synchronized long stateBytes() {
        long total = 0;
        for (ByteBuffer buffer : current) {
            total += buffer.capacity();
        }
        return total;
    }

    public synchronized int numThreads() {
        return runner.numThreads();
    }

    /** Wall time of the last {@link #classify} call (copies and invoke), in nanoseconds. */
    public synchronized long lastInferenceNanos() {
        return lastInferenceNanos;
    }

    /** Frames classified since construction or the last {@link #reset}. */
    public synchronized long framesSinceReset() {
        return framesSinceReset;
    }

    /**
     * Classifies one frame and advances the states.
     *
     * @param frame real-valued RGB in the model's value range ([0, 1] unless its {@link
     *     InputContract} says otherwise), [H, W, 3] flattened (length H*W*3), e.g. from {@link
     *     Preprocess}; quantized here for an 8-bit input.
     * @param logitsOut receives the logits, length num_classes.
     */
    public synchronized void classify(float[] frame, float[] logitsOut) {
        if (frame.length != height * width * 3) {
            throw new IllegalArgumentException("frame has " + frame.length + " floats, expected "
                    + height + "*" + width + "*3 = " + (height * width * 3));
        }
        if (logitsOut.length != numClasses) {
            throw new IllegalArgumentException("logitsOut has length " + logitsOut.length
                    + ", expected num_classes = " + numClasses);
        }
        long start = System.nanoTime();
        if (imageInfo.type == TensorInfo.FLOAT32) {
            imageFloats.clear();
            imageFloats.put(frame);
        } else {
            Quantization.quantize(frame, imageInfo, image);
        }
        runner.copyIn(imageTensor, image);
        for (int i = 0; i < current.length; i++) {
            runner.copyIn(stateInputTensors[i], current[i]);
        }
        runner.invoke();
        runner.copyOut(logitsTensor, logits);
        for (int i = 0; i < next.length; i++) {
            runner.copyOut(stateOutputTensors[i], next[i]);
            if (!stateOutInfo[i].sameEncoding(stateInInfo[i])) {
                Quantization.requantize(next[i], stateOutInfo[i], stateInInfo[i]);
            }
        }
        ByteBuffer[] swap = new ByteBuffer[current.length];
        System.arraycopy(current, 0, swap, 0, current.length);
        System.arraycopy(next, 0, current, 0, next.length);
        System.arraycopy(swap, 0, next, 0, swap.length);
        if (logitsInfo.type == TensorInfo.FLOAT32) {
            logitsFloats.clear();
            logitsFloats.get(logitsOut);
        } else {
            Quantization.dequantize(logits, logitsInfo, logitsOut);
        }
        lastInferenceNanos = System.nanoTime() - start;
        framesSinceReset++;
    }

    /** Convenience form of {@link #classify(float[], float[])} returning new logits. */
    public float[] classify(float[] frame) {
        float[] out = new float[numClasses];
        classify(frame, out);
        return out;
    }

    /**
     * Zeroes every state (real value 0: the zero point for a quantized state), so the next frame
     * starts a new clip.
     */
    public synchronized void reset() {
        for (int i = 0; i < current.length; i++) {
            ByteBuffer buffer = current[i];
            buffer.clear();
            if (stateInInfo[i].isQuantized8()) {
                byte zero = (byte) stateInInfo[i].zeroPoint;
                for (int j = 0; j < buffer.capacity(); j++) {
                    buffer.put(j, zero);
                }
            } else {
                buffer.put(zeros, 0, buffer.capacity());
            }
            buffer.clear();
        }
        framesSinceReset = 0;
    }

    /**
     * Recreates the interpreter with another thread count, keeping the states.
     *
     * @param numThreads CPU threads, at least 1.
     */
    public synchronized void setNumThreads(int numThreads) {
        if (numThreads == runner.numThreads()) {
            return;
        }
        SignatureRunner fresh = new SignatureRunner(model, numThreads, SIGNATURE_KEY);
        runner.close();
        runner = fresh;
        imageTensor = runner.inputTensor(IMAGE_INPUT);
        logitsTensor = runner.outputTensor(LOGITS_OUTPUT);
        bindStateTensors();
    }

    /** Copy of one state's current bytes (native order), for inspection and tests. */
    public synchronized byte[] stateBytes(String name) {
        int index = stateNames.indexOf(name);
        if (index < 0) {
            throw new IllegalArgumentException("no state '" + name + "', states are " + stateNames);
        }
        byte[] copy = new byte[current[index].capacity()];
        ByteBuffer view = current[index].duplicate();
        view.clear();
        view.get(copy);
        return copy;
    }

    @Override
    public synchronized void close() {
        runner.close();
    }
}
