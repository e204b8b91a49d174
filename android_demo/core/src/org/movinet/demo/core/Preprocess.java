package org.movinet.demo.core;

import java.nio.ByteBuffer;

/**
 * Turns camera or video frames into the model's input, exactly as the project's Python eval
 * preprocessing does ({@code movinet_tf.data.preprocess.preprocess_eval_frames}): scale to [0, 1],
 * resize bilinearly so the short side is {@code minImageSize} (long side rounded half up), then
 * crop the centre {@code imageSize} square. With minImageSize == imageSize this is "centre-crop a
 * square, resize it to the model size".
 *
 * <p>The resize uses half-pixel centres without antialiasing, like {@code tf.image.resize(...,
 * "bilinear")}, and only the pixels inside the crop are computed. Output layout is
 * [imageSize, imageSize, 3] (NHWC without the batch), RGB floats.
 */
public final class Preprocess {
    private static final float[] UNIT = new float[256];

    static {
        for (int i = 0; i < 256; i++) {
            UNIT[i] = i / 255f;
        }
    }

    private Preprocess() {}

    /**
     * Short-side resize size: {newHeight, newWidth} with the short side {@code minImageSize} and
     * the long side {@code long * minImageSize / short} rounded half up (integer arithmetic, as
     * in Python).
     */
    public static int[] shortSideSize(int height, int width, int minImageSize) {
        long h = height;
        long w = width;
        long size = minImageSize;
        if (h <= w) {
            return new int[] {minImageSize, (int) ((w * size + h / 2) / h)};
        }
        return new int[] {(int) ((h * size + w / 2) / w), minImageSize};
    }

    /**
     * Eval preprocessing of one ARGB frame.
     *
     * @param argb pixels as 0xAARRGGBB, row-major [height, width] (e.g. Bitmap.getPixels).
     * @param width frame width in pixels.
     * @param height frame height in pixels.
     * @param imageSize model input height and width (square).
     * @param minImageSize short side after resizing, >= imageSize.
     * @param out receives [imageSize, imageSize, 3] floats in [0, 1].
     */
    public static void argbToModelInput(int[] argb, int width, int height, int imageSize,
            int minImageSize, float[] out) {
        if (width < 1 || height < 1 || argb.length < width * height) {
            throw new IllegalArgumentException("argb has " + argb.length + " pixels, expected "
                    + width + "x" + height + " (positive)");
        }
        if (imageSize < 1 || minImageSize < imageSize) {
            throw new IllegalArgumentException("imageSize is " + imageSize + " and minImageSize "
                    + minImageSize + ", expected 1 <= imageSize <= minImageSize");
        }
        if (out.length != imageSize * imageSize * 3) {
            throw new IllegalArgumentException("out has length " + out.length + ", expected "
                    + imageSize + "*" + imageSize + "*3");
        }
        int[] resized = shortSideSize(height, width, minImageSize);
        int[] x0 = new int[imageSize];
        int[] x1 = new int[imageSize];
        float[] xLerp = new float[imageSize];
        sampleGrid(width, resized[1], (resized[1] - imageSize) / 2, x0, x1, xLerp);
        int[] y0 = new int[imageSize];
        int[] y1 = new int[imageSize];
        float[] yLerp = new float[imageSize];
        sampleGrid(height, resized[0], (resized[0] - imageSize) / 2, y0, y1, yLerp);
        int o = 0;
        for (int y = 0; y < imageSize; y++) {
            int rowTop = y0[y] * width;
            int rowBottom = y1[y] * width;
            float fy = yLerp[y];
            for (int x = 0; x < imageSize; x++) {
                int tl = argb[rowTop + x0[x]];
                int tr = argb[rowTop + x1[x]];
                int bl = argb[rowBottom + x0[x]];
                int br = argb[rowBottom + x1[x]];
                float fx = xLerp[x];
                for (int shift = 16; shift >= 0; shift -= 8) {
                    float a = UNIT[(tl >> shift) & 0xFF];
                    float b = UNIT[(tr >> shift) & 0xFF];
                    float c = UNIT[(bl >> shift) & 0xFF];
                    float d = UNIT[(br >> shift) & 0xFF];
                    float upper = a + (b - a) * fx;
                    float lower = c + (d - c) * fx;
                    out[o++] = upper + (lower - upper) * fy;
                }
            }
        }
    }

    /**
     * Source indices and weights of outputs {@code offset .. offset + count - 1} of a
     * half-pixel-centre bilinear resize from {@code in} to {@code resized} samples (float math as
     * in TensorFlow's ResizeBilinear): output i reads (1 - lerp) * src[i0] + lerp * src[i1].
     */
    static void sampleGrid(int in, int resized, int offset, int[] i0, int[] i1, float[] lerp) {
        float scale = (float) in / resized;
        for (int i = 0; i < i0.length; i++) {
            float src = ((float) (i + offset) + 0.5f) * scale - 0.5f;
            if (src < 0f) {
                src = 0f;
            }
            int low = (int) Math.floor(src);
            i0[i] = Math.min(low, in - 1);
            i1[i] = Math.min(low + 1, in - 1);
            lerp[i] = src - low;
        }
    }

    /**
     * Converts a YUV_420_888 frame (android.media.Image planes) to ARGB, honouring row and pixel
     * strides, so padded rows and interleaved (NV12/NV21-like, pixel stride 2) chroma both work.
     *
     * <p>Colour conversion is full-range BT.601 (JFIF), the colour space of Camera2 YUV output.
     * Chroma is subsampled 2x2: pixel (x, y) uses chroma sample (x / 2, y / 2).
     *
     * @param yPlane luma bytes; sample (x, y) at {@code y * yRowStride + x * yPixelStride}.
     * @param uPlane Cb bytes; sample (x, y) at {@code y * uvRowStride + x * uvPixelStride}.
     * @param vPlane Cr bytes, same strides as U.
     * @param out receives width*height pixels 0xFFRRGGBB.
     */
    public static void yuv420ToArgb(ByteBuffer yPlane, int yRowStride, int yPixelStride,
            ByteBuffer uPlane, ByteBuffer vPlane, int uvRowStride, int uvPixelStride,
            int width, int height, int[] out) {
        if (width < 1 || height < 1 || out.length < width * height) {
            throw new IllegalArgumentException("out has " + out.length + " pixels, expected "
                    + width + "x" + height + " (positive)");
        }
        int chromaWidth = (width + 1) / 2;
        int chromaHeight = (height + 1) / 2;
        checkPlane("Y", yPlane, yRowStride, yPixelStride, width, height);
        checkPlane("U", uPlane, uvRowStride, uvPixelStride, chromaWidth, chromaHeight);
        checkPlane("V", vPlane, uvRowStride, uvPixelStride, chromaWidth, chromaHeight);
        int o = 0;
        for (int y = 0; y < height; y++) {
            int yRow = y * yRowStride;
            int uvRow = (y >> 1) * uvRowStride;
            for (int x = 0; x < width; x++) {
                float luma = yPlane.get(yRow + x * yPixelStride) & 0xFF;
                int uvIndex = uvRow + (x >> 1) * uvPixelStride;
                float cb = (uPlane.get(uvIndex) & 0xFF) - 128f;
                float cr = (vPlane.get(uvIndex) & 0xFF) - 128f;
                int r = clampRound(luma + 1.402f * cr);
                int g = clampRound(luma - 0.344136f * cb - 0.714136f * cr);
                int b = clampRound(luma + 1.772f * cb);
                out[o++] = 0xFF000000 | (r << 16) | (g << 8) | b;
            }
        }
    }

    private static void checkPlane(String plane, ByteBuffer buffer, int rowStride,
            int pixelStride, int width, int height) {
        if (pixelStride < 1 || rowStride < (width - 1) * pixelStride + 1) {
            throw new IllegalArgumentException(plane + " plane has row stride " + rowStride
                    + " and pixel stride " + pixelStride + ", too small for " + width
                    + " samples per row");
        }
        // The last row of an Image plane may end right after its last sample (no padding).
        long needed = (long) (height - 1) * rowStride + (long) (width - 1) * pixelStride + 1;
        if (buffer.limit() < needed) {
            throw new IllegalArgumentException(plane + " plane has " + buffer.limit()
                    + " bytes, expected at least " + needed + " for " + width + "x" + height
                    + " samples");
        }
    }

    private static int clampRound(float value) {
        int rounded = (int) Math.floor(value + 0.5f);
        return rounded < 0 ? 0 : (rounded > 255 ? 255 : rounded);
    }

    /**
     * Rotates a square [size, size, 3] image clockwise by 0, 90, 180 or 270 degrees, e.g. by the
     * camera sensor orientation so the model sees the scene upright.
     */
    public static void rotateSquare(float[] in, int size, int degreesClockwise, float[] out) {
        if (in.length != size * size * 3 || out.length != in.length || in == out) {
            throw new IllegalArgumentException("in and out must be distinct arrays of length "
                    + size + "*" + size + "*3");
        }
        int turns = ((degreesClockwise % 360) + 360) % 360;
        if (turns % 90 != 0) {
            throw new IllegalArgumentException(
                    "rotation is " + degreesClockwise + " degrees, expected a multiple of 90");
        }
        turns /= 90;
        int last = size - 1;
        for (int y = 0; y < size; y++) {
            for (int x = 0; x < size; x++) {
                int sy;
                int sx;
                switch (turns) {
                    case 1: sy = last - x; sx = y; break;
                    case 2: sy = last - y; sx = last - x; break;
                    case 3: sy = x; sx = last - y; break;
                    default: sy = y; sx = x; break;
                }
                int src = (sy * size + sx) * 3;
                int dst = (y * size + x) * 3;
                out[dst] = in[src];
                out[dst + 1] = in[src + 1];
                out[dst + 2] = in[src + 2];
            }
        }
    }
}
