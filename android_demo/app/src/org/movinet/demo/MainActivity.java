package org.movinet.demo;

import android.Manifest;
import android.app.Activity;
import android.content.pm.PackageManager;
import android.content.res.AssetFileDescriptor;
import android.graphics.Bitmap;
import android.graphics.ImageFormat;
import android.hardware.camera2.CameraAccessException;
import android.hardware.camera2.CameraCaptureSession;
import android.hardware.camera2.CameraCharacteristics;
import android.hardware.camera2.CameraDevice;
import android.hardware.camera2.CameraManager;
import android.hardware.camera2.CaptureRequest;
import android.hardware.camera2.params.StreamConfigurationMap;
import android.media.Image;
import android.media.ImageReader;
import android.media.MediaMetadataRetriever;
import android.os.Bundle;
import android.os.Handler;
import android.os.HandlerThread;
import android.os.SystemClock;
import android.util.Log;
import android.util.Size;
import android.view.View;
import android.widget.Button;
import android.widget.ImageView;
import android.widget.TextView;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicBoolean;
import org.movinet.demo.core.FrameGate;
import org.movinet.demo.core.InputContract;
import org.movinet.demo.core.Labels;
import org.movinet.demo.core.Preprocess;
import org.movinet.demo.core.RateMeter;
import org.movinet.demo.core.StreamingClassifier;
import org.movinet.demo.core.TfLiteBridge;
import org.movinet.demo.core.TopK;

/**
 * Streams the back camera (Camera2, YUV_420_888) or a bundled clip through the single-frame
 * streaming MoViNet, at the frame rate of the model's input contract (the manifest's
 * {@code input_contract}; see {@link InputContract} for the logged defaults), and shows the
 * top-3 classes.
 *
 * <p>Threads: the camera thread only takes the latest image, measures the input rate, applies
 * the frame gate and converts the accepted YUV image to ARGB; the inference thread preprocesses,
 * classifies and posts the result to the UI. A frame arriving while inference is busy is
 * dropped. All model logic lives in the pure-Java core ({@code org.movinet.demo.core}), which is
 * tested on the desktop JVM; this class is glue and has only been compiled, never run.
 */
public class MainActivity extends Activity {
    private static final String TAG = "MovinetDemo";
    private static final String MODEL_ASSET = "model.tflite";
    private static final String LABELS_ASSET = "labels.txt";
    private static final String MANIFEST_ASSET = "model_manifest.json";
    private static final String CLIP_ASSET = "clip.mp4";
    private static final int DEFAULT_THREADS = 2;
    private static final int MAX_THREADS = 8;
    private static final int CAMERA_PERMISSION_REQUEST = 1;

    private ImageView inputView;
    private TextView resultsView;
    private TextView statsView;
    private TextView threadsView;
    private Button sourceButton;

    private StreamingClassifier classifier;
    private List<String> labels;
    private InputContract contract;
    private int imageSize;
    private int minImageSize;
    private int numThreads = DEFAULT_THREADS;

    private HandlerThread cameraThread;
    private Handler cameraHandler;
    private HandlerThread inferenceThread;
    private Handler inferenceHandler;
    private final Handler uiHandler = new Handler();

    private CameraDevice camera;
    private CameraCaptureSession session;
    private ImageReader reader;
    private int sensorRotation;

    private FrameGate gate;
    private final RateMeter inputRate = new RateMeter(30);
    private final AtomicBoolean inferenceBusy = new AtomicBoolean(false);
    private int[] argb = new int[0];
    private int argbWidth;
    private int argbHeight;
    private float[] modelInput;
    private float[] rotated;
    private float[] logits;

    private boolean useClip;
    private boolean clipAvailable;
    private MediaMetadataRetriever retriever;
    private long clipPositionUs;
    private long clipDurationUs;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        inputView = (ImageView) findViewById(R.id.model_input);
        resultsView = (TextView) findViewById(R.id.results);
        statsView = (TextView) findViewById(R.id.stats);
        threadsView = (TextView) findViewById(R.id.threads);
        sourceButton = (Button) findViewById(R.id.source);
        try {
            // The runtime first: the bridge's symbols resolve against it.
            System.loadLibrary("litert-lm");
            System.loadLibrary("tflitejni");
            loadModel();
        } catch (IOException | RuntimeException | UnsatisfiedLinkError e) {
            Log.e(TAG, "cannot load the model", e);
            resultsView.setText("Cannot load the model: " + e);
            return;
        }
        clipAvailable = hasAsset(CLIP_ASSET);
        wireButtons();
        updateThreadsLabel();
    }

    private void loadModel() throws IOException {
        AssetFileDescriptor fd = getAssets().openFd(MODEL_ASSET);
        ByteBuffer model;
        FileInputStream stream = new FileInputStream(fd.getFileDescriptor());
        try {
            // Stored uncompressed in the APK, so it can be mapped in place.
            model = stream.getChannel().map(
                    FileChannel.MapMode.READ_ONLY, fd.getStartOffset(), fd.getDeclaredLength());
        } finally {
            stream.close();
            fd.close();
        }
        classifier = new StreamingClassifier(model, numThreads);
        InputStream labelStream = getAssets().open(LABELS_ASSET);
        try {
            labels = Labels.read(labelStream, classifier.numClasses());
        } finally {
            labelStream.close();
        }
        imageSize = classifier.inputHeight();
        // Refuses a manifest that disagrees with the model; without input_contract the
        // documented defaults apply, and the log says which.
        contract = InputContract.read(readManifest(), classifier.imageInfo());
        if (contract.defaultsUsed() != null) {
            Log.w(TAG, "input contract: " + contract.defaultsUsed());
        }
        minImageSize = contract.minImageSize;
        gate = new FrameGate(contract.frameRate, 0.1);
        modelInput = new float[imageSize * imageSize * 3];
        rotated = new float[modelInput.length];
        logits = new float[classifier.numClasses()];
        Log.i(TAG, "TFLite " + TfLiteBridge.version() + ", input " + imageSize + "px, "
                + classifier.numClasses() + " classes, " + classifier.stateNames().size()
                + " states (" + classifier.stateBytes() + " bytes); input contract: "
                + contract);
    }

    /** The exporter's manifest bundled by build_apk.sh, or null when the APK has none. */
    private String readManifest() throws IOException {
        if (!hasAsset(MANIFEST_ASSET)) {
            return null;
        }
        InputStream in = getAssets().open(MANIFEST_ASSET);
        try {
            java.io.ByteArrayOutputStream buffer = new java.io.ByteArrayOutputStream();
            byte[] chunk = new byte[8192];
            int n;
            while ((n = in.read(chunk)) > 0) {
                buffer.write(chunk, 0, n);
            }
            return new String(buffer.toByteArray(), "UTF-8");
        } finally {
            in.close();
        }
    }

    private boolean hasAsset(String name) {
        try {
            return Arrays.asList(getAssets().list("")).contains(name);
        } catch (IOException e) {
            Log.w(TAG, "cannot list assets", e);
            return false;
        }
    }

    private void wireButtons() {
        sourceButton.setOnClickListener(new View.OnClickListener() {
            @Override
            public void onClick(View view) {
                if (!useClip && !clipAvailable) {
                    resultsView.setText(R.string.no_clip);
                    return;
                }
                stopSources();
                useClip = !useClip;
                startSource();
            }
        });
        findViewById(R.id.threads_minus).setOnClickListener(new View.OnClickListener() {
            @Override
            public void onClick(View view) {
                changeThreads(numThreads - 1);
            }
        });
        findViewById(R.id.threads_plus).setOnClickListener(new View.OnClickListener() {
            @Override
            public void onClick(View view) {
                changeThreads(numThreads + 1);
            }
        });
        findViewById(R.id.reset).setOnClickListener(new View.OnClickListener() {
            @Override
            public void onClick(View view) {
                inferenceHandler.post(new Runnable() {
                    @Override
                    public void run() {
                        classifier.reset();
                        gate.reset();
                    }
                });
            }
        });
    }

    /** Recreates the interpreter with the new thread count (on the inference thread). */
    private void changeThreads(int requested) {
        final int threads = Math.max(1, Math.min(MAX_THREADS, requested));
        if (threads == numThreads || inferenceHandler == null) {
            return;
        }
        numThreads = threads;
        updateThreadsLabel();
        inferenceHandler.post(new Runnable() {
            @Override
            public void run() {
                classifier.setNumThreads(threads);
            }
        });
    }

    private void updateThreadsLabel() {
        threadsView.setText(String.format(Locale.US, "%d threads", numThreads));
    }

    @Override
    protected void onResume() {
        super.onResume();
        if (classifier == null) {
            return;
        }
        cameraThread = new HandlerThread("camera");
        cameraThread.start();
        cameraHandler = new Handler(cameraThread.getLooper());
        inferenceThread = new HandlerThread("inference");
        inferenceThread.start();
        inferenceHandler = new Handler(inferenceThread.getLooper());
        startSource();
    }

    @Override
    protected void onPause() {
        stopSources();
        if (cameraThread != null) {
            cameraThread.quitSafely();
            inferenceThread.quitSafely();
            try {
                cameraThread.join();
                inferenceThread.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            cameraThread = null;
            inferenceThread = null;
            inferenceHandler = null;
        }
        super.onPause();
    }

    @Override
    protected void onDestroy() {
        if (classifier != null) {
            classifier.close();
        }
        super.onDestroy();
    }

    private void startSource() {
        classifier.reset();
        gate.reset();
        inputRate.reset();
        sourceButton.setText(useClip ? R.string.use_camera : R.string.use_clip);
        if (useClip) {
            startClip();
        } else if (checkSelfPermission(Manifest.permission.CAMERA)
                == PackageManager.PERMISSION_GRANTED) {
            openCamera();
        } else {
            requestPermissions(new String[] {Manifest.permission.CAMERA},
                    CAMERA_PERMISSION_REQUEST);
        }
    }

    @Override
    public void onRequestPermissionsResult(int requestCode, String[] permissions,
            int[] grantResults) {
        if (requestCode != CAMERA_PERMISSION_REQUEST) {
            return;
        }
        if (grantResults.length > 0 && grantResults[0] == PackageManager.PERMISSION_GRANTED) {
            if (!useClip && cameraHandler != null) {
                openCamera();
            }
        } else {
            resultsView.setText(R.string.camera_denied);
        }
    }

    private void stopSources() {
        if (session != null) {
            session.close();
            session = null;
        }
        if (camera != null) {
            camera.close();
            camera = null;
        }
        if (reader != null) {
            reader.close();
            reader = null;
        }
        if (inferenceHandler != null) {
            inferenceHandler.removeCallbacksAndMessages(null);
        }
        if (retriever != null) {
            final MediaMetadataRetriever old = retriever;
            retriever = null;
            if (inferenceHandler != null) {
                inferenceHandler.post(new Runnable() {
                    @Override
                    public void run() {
                        old.release();
                    }
                });
            } else {
                old.release();
            }
        }
    }

    // ---- camera ----

    private void openCamera() {
        CameraManager manager = (CameraManager) getSystemService(CAMERA_SERVICE);
        try {
            String cameraId = null;
            CameraCharacteristics chosen = null;
            for (String id : manager.getCameraIdList()) {
                CameraCharacteristics c = manager.getCameraCharacteristics(id);
                Integer facing = c.get(CameraCharacteristics.LENS_FACING);
                if (facing != null && facing == CameraCharacteristics.LENS_FACING_BACK) {
                    cameraId = id;
                    chosen = c;
                    break;
                }
            }
            if (cameraId == null) {
                resultsView.setText("No back camera; use the clip");
                return;
            }
            Integer orientation = chosen.get(CameraCharacteristics.SENSOR_ORIENTATION);
            sensorRotation = orientation == null ? 0 : orientation;
            StreamConfigurationMap map =
                    chosen.get(CameraCharacteristics.SCALER_STREAM_CONFIGURATION_MAP);
            Size size = chooseSize(map.getOutputSizes(ImageFormat.YUV_420_888));
            reader = ImageReader.newInstance(
                    size.getWidth(), size.getHeight(), ImageFormat.YUV_420_888, 3);
            reader.setOnImageAvailableListener(new ImageReader.OnImageAvailableListener() {
                @Override
                public void onImageAvailable(ImageReader source) {
                    onCameraImage(source);
                }
            }, cameraHandler);
            manager.openCamera(cameraId, new CameraDevice.StateCallback() {
                @Override
                public void onOpened(CameraDevice device) {
                    camera = device;
                    startCapture();
                }

                @Override
                public void onDisconnected(CameraDevice device) {
                    device.close();
                    camera = null;
                }

                @Override
                public void onError(CameraDevice device, int error) {
                    Log.e(TAG, "camera error " + error);
                    device.close();
                    camera = null;
                }
            }, cameraHandler);
        } catch (CameraAccessException | SecurityException e) {
            Log.e(TAG, "cannot open the camera", e);
            resultsView.setText("Cannot open the camera: " + e.getMessage());
        }
    }

    /** The smallest output whose short side is at least 480 px (plenty for a 172 px model). */
    private static Size chooseSize(Size[] sizes) {
        Size best = null;
        for (Size s : sizes) {
            if (Math.min(s.getWidth(), s.getHeight()) < 480) {
                continue;
            }
            if (best == null || (long) s.getWidth() * s.getHeight()
                    < (long) best.getWidth() * best.getHeight()) {
                best = s;
            }
        }
        if (best == null) {
            best = sizes[0];
            for (Size s : sizes) {
                if ((long) s.getWidth() * s.getHeight()
                        > (long) best.getWidth() * best.getHeight()) {
                    best = s;
                }
            }
        }
        return best;
    }

    private void startCapture() {
        if (camera == null || reader == null) {
            return;
        }
        try {
            final CaptureRequest.Builder request =
                    camera.createCaptureRequest(CameraDevice.TEMPLATE_PREVIEW);
            request.addTarget(reader.getSurface());
            camera.createCaptureSession(Arrays.asList(reader.getSurface()),
                    new CameraCaptureSession.StateCallback() {
                        @Override
                        public void onConfigured(CameraCaptureSession configured) {
                            session = configured;
                            try {
                                session.setRepeatingRequest(request.build(), null, cameraHandler);
                            } catch (CameraAccessException e) {
                                Log.e(TAG, "cannot start capture", e);
                            }
                        }

                        @Override
                        public void onConfigureFailed(CameraCaptureSession failed) {
                            Log.e(TAG, "capture session configuration failed");
                        }
                    }, cameraHandler);
        } catch (CameraAccessException e) {
            Log.e(TAG, "cannot create the capture session", e);
        }
    }

    /** Camera thread: gate the frame, convert it while the Image is open, hand it over. */
    private void onCameraImage(ImageReader source) {
        Image image = source.acquireLatestImage();
        if (image == null) {
            return;
        }
        try {
            long timestamp = image.getTimestamp();
            inputRate.mark(timestamp);
            if (!gate.accept(timestamp) || !inferenceBusy.compareAndSet(false, true)) {
                return;
            }
            int width = image.getWidth();
            int height = image.getHeight();
            if (argb.length != width * height) {
                argb = new int[width * height];
            }
            argbWidth = width;
            argbHeight = height;
            Image.Plane[] planes = image.getPlanes();
            Preprocess.yuv420ToArgb(planes[0].getBuffer(), planes[0].getRowStride(),
                    planes[0].getPixelStride(), planes[1].getBuffer(), planes[2].getBuffer(),
                    planes[1].getRowStride(), planes[1].getPixelStride(), width, height, argb);
            final int rotation = sensorRotation;
            inferenceHandler.post(new Runnable() {
                @Override
                public void run() {
                    try {
                        classifyArgb(rotation);
                    } finally {
                        inferenceBusy.set(false);
                    }
                }
            });
        } finally {
            image.close();
        }
    }

    // ---- bundled clip ----

    private void startClip() {
        try {
            AssetFileDescriptor fd = getAssets().openFd(CLIP_ASSET);
            retriever = new MediaMetadataRetriever();
            retriever.setDataSource(fd.getFileDescriptor(), fd.getStartOffset(), fd.getLength());
            fd.close();
            String duration =
                    retriever.extractMetadata(MediaMetadataRetriever.METADATA_KEY_DURATION);
            clipDurationUs = duration == null ? 0 : Long.parseLong(duration) * 1000L;
        } catch (IOException | RuntimeException e) {
            Log.e(TAG, "cannot open the clip", e);
            resultsView.setText("Cannot open the clip: " + e.getMessage());
            return;
        }
        clipPositionUs = 0;
        inferenceHandler.post(clipStep);
    }

    /** Inference thread: one clip frame per model period, looping, until the source stops. */
    private final Runnable clipStep = new Runnable() {
        @Override
        public void run() {
            if (retriever == null) {
                return;
            }
            long started = SystemClock.uptimeMillis();
            if (clipPositionUs >= clipDurationUs) {
                clipPositionUs = 0;
                classifier.reset();
            }
            Bitmap frame = retriever.getFrameAtTime(
                    clipPositionUs, MediaMetadataRetriever.OPTION_CLOSEST);
            clipPositionUs += (long) (1e6 / contract.frameRate);
            if (frame != null) {
                inputRate.mark(SystemClock.elapsedRealtimeNanos());
                int width = frame.getWidth();
                int height = frame.getHeight();
                if (argb.length != width * height) {
                    argb = new int[width * height];
                }
                frame.getPixels(argb, 0, width, 0, 0, width, height);
                frame.recycle();
                argbWidth = width;
                argbHeight = height;
                classifyArgb(0);
            }
            long delay = (long) (1000 / contract.frameRate)
                    - (SystemClock.uptimeMillis() - started);
            inferenceHandler.postDelayed(this, Math.max(0, delay));
        }
    };

    // ---- inference ----

    /** Inference thread: preprocess the ARGB frame, classify, show the result. */
    private void classifyArgb(int rotation) {
        Preprocess.argbToModelInput(argb, argbWidth, argbHeight, imageSize, minImageSize,
                modelInput);
        float[] upright = modelInput;
        if (rotation != 0) {
            Preprocess.rotateSquare(modelInput, imageSize, rotation, rotated);
            upright = rotated;
        }
        final Bitmap shown = toBitmap(upright, imageSize);
        contract.toValueRange(upright);
        classifier.classify(upright, logits);
        float[] probs = TopK.softmax(logits);
        final String top3 = TopK.describe(probs, labels, 3);
        final String stats = String.format(Locale.US,
                "%.1f ms/frame · input %.1f fps · model %.1f fps · %d frames since reset",
                classifier.lastInferenceNanos() / 1e6, inputRate.fps(), contract.frameRate,
                classifier.framesSinceReset());
        uiHandler.post(new Runnable() {
            @Override
            public void run() {
                resultsView.setText(top3);
                statsView.setText(stats);
                inputView.setImageBitmap(shown);
            }
        });
    }

    private static Bitmap toBitmap(float[] rgb, int size) {
        int[] pixels = new int[size * size];
        for (int i = 0; i < pixels.length; i++) {
            int r = Math.round(rgb[3 * i] * 255f);
            int g = Math.round(rgb[3 * i + 1] * 255f);
            int b = Math.round(rgb[3 * i + 2] * 255f);
            pixels[i] = 0xFF000000 | (r << 16) | (g << 8) | b;
        }
        return Bitmap.createBitmap(pixels, size, size, Bitmap.Config.ARGB_8888);
    }
}
