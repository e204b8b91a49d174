import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.List;
import org.movinet.demo.core.FrameGate;
import org.movinet.demo.core.InputContract;
import org.movinet.demo.core.Labels;
import org.movinet.demo.core.Preprocess;
import org.movinet.demo.core.SignatureRunner;
import org.movinet.demo.core.StreamingClassifier;
import org.movinet.demo.core.TfLiteBridge;
import org.movinet.demo.core.TopK;

/**
 * Drives the app's pure-Java core on a desktop JVM for tests/android: the same classes and the
 * same JNI bridge source as the APK, against the x86_64 Linux build of the runtime.
 *
 * <p>Binary files are raw little-endian arrays written by the Python tests. Results go to files
 * (arrays) and to stdout as "key=value" lines.
 */
public final class CoreHarness {
    public static void main(String[] args) throws Exception {
        // Same order as the app: the runtime first, then the bridge that needs it.
        System.load(System.getProperty("movinet.runtime"));
        System.load(System.getProperty("movinet.bridge"));
        String command = args[0];
        if (command.equals("stream")) {
            stream(args);
        } else if (command.equals("threads")) {
            threads(args);
        } else if (command.equals("argb")) {
            argb(args);
        } else if (command.equals("yuv")) {
            yuv(args);
        } else if (command.equals("labels")) {
            labels(args);
        } else if (command.equals("topk")) {
            topk(args);
        } else if (command.equals("gate")) {
            gate(args);
        } else if (command.equals("open")) {
            open(args);
        } else if (command.equals("contract")) {
            contract(args);
        } else {
            throw new IllegalArgumentException("unknown command " + command);
        }
    }

    /**
     * stream MODEL FRAMES_F32 THREADS OUT_PREFIX [MANIFEST]: runs, resets and re-runs, switches
     * threads. Frames are preprocessed pixels in [0, 1]; as in the app, they are mapped to the
     * input contract's value range (the manifest's, or the defaults) and quantized by the
     * classifier for an 8-bit input.
     */
    private static void stream(String[] args) throws IOException {
        ByteBuffer model = SignatureRunner.mapFile(new File(args[1]));
        int threads = Integer.parseInt(args[3]);
        String out = args[4];
        StreamingClassifier classifier = new StreamingClassifier(model, threads);
        InputContract contract = InputContract.read(
                args.length > 5 ? readText(args[5]) : null, classifier.imageInfo());
        System.out.println("frame_rate=" + contract.frameRate);
        System.out.println("contract_defaults=" + contract.defaultsUsed());
        System.out.println("image_type=" + classifier.imageInfo().typeName());
        int size = classifier.inputHeight();
        float[] all = readFloats(args[2]);
        contract.toValueRange(all);
        int frameFloats = size * classifier.inputWidth() * 3;
        int frames = all.length / frameFloats;
        System.out.println("version=" + TfLiteBridge.version());
        System.out.println("height=" + classifier.inputHeight());
        System.out.println("width=" + classifier.inputWidth());
        System.out.println("num_classes=" + classifier.numClasses());
        System.out.println("states=" + String.join(",", classifier.stateNames()));
        System.out.println("state_bytes=" + classifier.stateBytes());

        int classes = classifier.numClasses();
        float[] logits = new float[frames * classes];
        float[] probs = new float[frames * classes];
        int[] top3 = new int[frames * 3];
        float[] frame = new float[frameFloats];
        float[] row = new float[classes];
        long totalNanos = 0;
        for (int f = 0; f < frames; f++) {
            System.arraycopy(all, f * frameFloats, frame, 0, frameFloats);
            classifier.classify(frame, row);
            totalNanos += classifier.lastInferenceNanos();
            System.arraycopy(row, 0, logits, f * classes, classes);
            float[] p = TopK.softmax(row);
            System.arraycopy(p, 0, probs, f * classes, classes);
            System.arraycopy(TopK.topK(p, 3), 0, top3, f * 3, 3);
        }
        System.out.println("ms_per_frame=" + (totalNanos / 1e6 / frames));
        System.out.println("frames_since_reset=" + classifier.framesSinceReset());
        writeFloats(out + ".logits.f32", logits);
        writeFloats(out + ".probs.f32", probs);
        writeInts(out + ".top3.i32", top3);

        classifier.reset();
        System.out.println("frames_after_reset=" + classifier.framesSinceReset());
        writeFloats(out + ".rerun.f32", runAll(classifier, all, frames, frameFloats));

        // Half the clip, then a new thread count (new interpreter), then the rest.
        classifier.reset();
        float[] switched = new float[frames * classes];
        for (int f = 0; f < frames; f++) {
            if (f == frames / 2) {
                classifier.setNumThreads(threads + 1);
            }
            System.arraycopy(all, f * frameFloats, frame, 0, frameFloats);
            classifier.classify(frame, row);
            System.arraycopy(row, 0, switched, f * classes, classes);
        }
        System.out.println("threads_after_switch=" + classifier.numThreads());
        writeFloats(out + ".switch.f32", switched);
        classifier.close();
    }

    private static float[] runAll(StreamingClassifier classifier, float[] all, int frames,
            int frameFloats) {
        int classes = classifier.numClasses();
        float[] logits = new float[frames * classes];
        float[] frame = new float[frameFloats];
        float[] row = new float[classes];
        for (int f = 0; f < frames; f++) {
            System.arraycopy(all, f * frameFloats, frame, 0, frameFloats);
            classifier.classify(frame, row);
            System.arraycopy(row, 0, logits, f * classes, classes);
        }
        return logits;
    }

    /**
     * threads MODEL LOW HIGH: OS threads of this process while an interpreter with LOW threads,
     * then one switched to HIGH threads with setNumThreads, has run a frame.
     */
    private static void threads(String[] args) throws IOException {
        ByteBuffer model = SignatureRunner.mapFile(new File(args[1]));
        int low = Integer.parseInt(args[2]);
        int high = Integer.parseInt(args[3]);
        StreamingClassifier classifier = new StreamingClassifier(model, low);
        float[] frame = new float[classifier.inputHeight() * classifier.inputWidth() * 3];
        classifier.classify(frame);
        System.out.println("os_threads_low=" + osThreads());
        classifier.setNumThreads(high);
        classifier.classify(frame);
        System.out.println("os_threads_high=" + osThreads());
        System.out.println("num_threads=" + classifier.numThreads());
        classifier.setNumThreads(low);
        classifier.classify(frame);
        System.out.println("os_threads_back=" + osThreads());
        classifier.close();
    }

    /**
     * Threads of this process still named like the launcher ("java"): native threads (the
     * runtime's workers) inherit that name, while the JVM names its own (compiler, GC, ...) and
     * may start or stop those at any time.
     */
    private static int osThreads() throws IOException {
        String[] tasks = new File("/proc/self/task").list();
        if (tasks == null) {
            return -1;
        }
        int count = 0;
        for (String task : tasks) {
            try {
                String comm = new String(Files.readAllBytes(
                        Paths.get("/proc/self/task", task, "comm")), "UTF-8").trim();
                if (comm.equals("java")) {
                    count++;
                }
            } catch (java.nio.file.NoSuchFileException e) {
                // The thread exited between listing and reading: not running, not counted.
            }
        }
        return count;
    }

    /** argb RGB_U8 HEIGHT WIDTH IMAGE_SIZE MIN_IMAGE_SIZE OUT_F32: frames [N, H, W, 3]. */
    private static void argb(String[] args) throws IOException {
        byte[] rgb = Files.readAllBytes(Paths.get(args[1]));
        int height = Integer.parseInt(args[2]);
        int width = Integer.parseInt(args[3]);
        int size = Integer.parseInt(args[4]);
        int minSize = Integer.parseInt(args[5]);
        int frames = rgb.length / (height * width * 3);
        float[] out = new float[frames * size * size * 3];
        int[] pixels = new int[height * width];
        float[] frame = new float[size * size * 3];
        for (int f = 0; f < frames; f++) {
            int base = f * height * width * 3;
            for (int i = 0; i < height * width; i++) {
                int r = rgb[base + 3 * i] & 0xFF;
                int g = rgb[base + 3 * i + 1] & 0xFF;
                int b = rgb[base + 3 * i + 2] & 0xFF;
                pixels[i] = 0xFF000000 | (r << 16) | (g << 8) | b;
            }
            Preprocess.argbToModelInput(pixels, width, height, size, minSize, frame);
            System.arraycopy(frame, 0, out, f * frame.length, frame.length);
        }
        writeFloats(args[6], out);
    }

    /**
     * yuv LIST IMAGE_SIZE MIN_IMAGE_SIZE ROTATION OUT_F32. Each line of LIST: "LAYOUT Y_FILE
     * CHROMA_FILE(S) ..." as written by tests/android/test_preprocess.py:
     * {@code planar W H yRow uvRow yFile uFile vFile} or
     * {@code nv12|nv21 W H yRow uvRow yFile uvFile} (one interleaved chroma plane, pixel stride 2,
     * U and V views offset by one byte, as Camera2 hands them out).
     */
    private static void yuv(String[] args) throws IOException {
        List<String> lines = Files.readAllLines(Paths.get(args[1]));
        int size = Integer.parseInt(args[2]);
        int minSize = Integer.parseInt(args[3]);
        int rotation = Integer.parseInt(args[4]);
        float[] out = new float[lines.size() * size * size * 3];
        float[] frame = new float[size * size * 3];
        float[] rotated = new float[size * size * 3];
        for (int f = 0; f < lines.size(); f++) {
            String[] p = lines.get(f).trim().split(" ");
            String layout = p[0];
            int width = Integer.parseInt(p[1]);
            int height = Integer.parseInt(p[2]);
            int yRow = Integer.parseInt(p[3]);
            int uvRow = Integer.parseInt(p[4]);
            ByteBuffer y = ByteBuffer.wrap(Files.readAllBytes(Paths.get(p[5])));
            ByteBuffer u;
            ByteBuffer v;
            int uvPixel;
            if (layout.equals("planar")) {
                u = ByteBuffer.wrap(Files.readAllBytes(Paths.get(p[6])));
                v = ByteBuffer.wrap(Files.readAllBytes(Paths.get(p[7])));
                uvPixel = 1;
            } else {
                // Direct buffers, like android.media.Image planes.
                byte[] interleaved = Files.readAllBytes(Paths.get(p[6]));
                ByteBuffer chroma = ByteBuffer.allocateDirect(interleaved.length);
                chroma.put(interleaved);
                chroma.clear();
                ByteBuffer first = chroma.duplicate();
                ByteBuffer second = chroma.duplicate();
                second.position(1);
                second = second.slice();
                u = layout.equals("nv12") ? first : second;
                v = layout.equals("nv12") ? second : first;
                // The view starting at byte 0 ends one byte early, as on devices.
                first.limit(interleaved.length - 1);
                uvPixel = 2;
            }
            int[] argb = new int[width * height];
            Preprocess.yuv420ToArgb(y, yRow, 1, u, v, uvRow, uvPixel, width, height, argb);
            Preprocess.argbToModelInput(argb, width, height, size, minSize, frame);
            Preprocess.rotateSquare(frame, size, rotation, rotated);
            System.arraycopy(rotated, 0, out, f * frame.length, frame.length);
        }
        writeFloats(args[5], out);
    }

    /** labels FILE NUM_CLASSES: prints "labels=N first=... last=..." or "error=message". */
    private static void labels(String[] args) throws IOException {
        InputStream in = new FileInputStream(args[1]);
        try {
            List<String> labels = Labels.read(in, Integer.parseInt(args[2]));
            System.out.println("labels=" + labels.size());
            System.out.println("first=" + labels.get(0));
            System.out.println("last=" + labels.get(labels.size() - 1));
        } catch (IllegalArgumentException e) {
            System.out.println("error=" + e.getMessage());
        } finally {
            in.close();
        }
    }

    /** topk SCORES_F32 K: prints "topk=i,j,..." (TopK.topK on the raw scores). */
    private static void topk(String[] args) throws IOException {
        float[] scores = readFloats(args[1]);
        int[] best = TopK.topK(scores, Integer.parseInt(args[2]));
        StringBuilder text = new StringBuilder();
        for (int index : best) {
            text.append(text.length() == 0 ? "" : ",").append(index);
        }
        System.out.println("topk=" + text);
    }

    /** gate MODEL_FPS CAMERA_FPS SECONDS JITTER_MS: prints how many frames the gate accepted. */
    private static void gate(String[] args) {
        double modelFps = Double.parseDouble(args[1]);
        double cameraFps = Double.parseDouble(args[2]);
        double seconds = Double.parseDouble(args[3]);
        double jitterMs = Double.parseDouble(args[4]);
        FrameGate gate = new FrameGate(modelFps, 0.1);
        java.util.Random random = new java.util.Random(0);
        int accepted = 0;
        int frames = (int) Math.round(seconds * cameraFps);
        for (int i = 0; i < frames; i++) {
            double jitter = (random.nextDouble() * 2 - 1) * jitterMs * 1e6;
            long t = (long) (i * 1e9 / cameraFps + jitter);
            if (gate.accept(t)) {
                accepted++;
            }
        }
        System.out.println("accepted=" + accepted);
    }

    /** open MODEL: prints "ok" or "error=message" for a model the classifier must reject. */
    private static void open(String[] args) throws IOException {
        ByteBuffer model = SignatureRunner.mapFile(new File(args[1]));
        try {
            StreamingClassifier classifier = new StreamingClassifier(model, 1);
            System.out.println("ok states=" + classifier.stateNames().size());
            classifier.close();
        } catch (IllegalArgumentException e) {
            System.out.println("error=" + e.getMessage());
        }
    }

    /**
     * contract MODEL MANIFEST|-: the input contract the app would use, as key=value lines, or
     * "error=message"; "-" stands for an app without a manifest.
     */
    private static void contract(String[] args) throws IOException {
        ByteBuffer model = SignatureRunner.mapFile(new File(args[1]));
        StreamingClassifier classifier = new StreamingClassifier(model, 1);
        try {
            InputContract c = InputContract.read(
                    args[2].equals("-") ? null : readText(args[2]), classifier.imageInfo());
            System.out.println("frame_rate=" + c.frameRate);
            System.out.println("image_size=" + c.imageHeight + "," + c.imageWidth);
            System.out.println("min_image_size=" + c.minImageSize);
            System.out.println("value_range=" + c.valueLow + "," + c.valueHigh);
            System.out.println("dtype=" + c.dtype);
            System.out.println("scale=" + c.scale);
            System.out.println("zero_point=" + c.zeroPoint);
            System.out.println("frame_period_ns=" + c.framePeriodNanos());
            System.out.println("defaults=" + c.defaultsUsed());
            // The app's frame gate at the contract's rate: 10 s of a 30 fps camera.
            FrameGate gate = new FrameGate(c.frameRate, 0.1);
            int accepted = 0;
            for (int i = 0; i < 300; i++) {
                if (gate.accept((long) (i * 1e9 / 30))) {
                    accepted++;
                }
            }
            System.out.println("camera_30fps_10s_accepted=" + accepted);
        } catch (IllegalArgumentException e) {
            System.out.println("error=" + e.getMessage());
        } finally {
            classifier.close();
        }
    }

    private static String readText(String path) throws IOException {
        return new String(Files.readAllBytes(Paths.get(path)), "UTF-8");
    }

    private static float[] readFloats(String path) throws IOException {
        ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(Paths.get(path)))
                .order(ByteOrder.LITTLE_ENDIAN);
        float[] values = new float[bytes.remaining() / 4];
        bytes.asFloatBuffer().get(values);
        return values;
    }

    private static void writeFloats(String path, float[] values) throws IOException {
        ByteBuffer bytes = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        bytes.asFloatBuffer().put(values);
        Files.write(Paths.get(path), bytes.array());
    }

    private static void writeInts(String path, int[] values) throws IOException {
        ByteBuffer bytes = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        bytes.asIntBuffer().put(values);
        Files.write(Paths.get(path), bytes.array());
    }
}
