package org.movinet.demo.core;

/**
 * Picks frames from a faster source at the model's frame rate (the rate it was trained at),
 * e.g. 5 of a camera's 30 frames per second.
 */
public final class FrameGate {
    private final long periodNanos;
    private long lastAccepted = Long.MIN_VALUE;

    /**
     * @param modelFps frames per second fed to the model, > 0.
     * @param tolerance fraction of a period a frame may come early and still be taken, in [0, 1),
     *     so a 30 fps camera feeds a 5 fps model every 6th frame despite jitter.
     */
    public FrameGate(double modelFps, double tolerance) {
        if (!(modelFps > 0) || tolerance < 0 || tolerance >= 1) {
            throw new IllegalArgumentException("modelFps is " + modelFps + " and tolerance "
                    + tolerance + ", expected modelFps > 0 and tolerance in [0, 1)");
        }
        periodNanos = (long) ((1e9 / modelFps) * (1 - tolerance));
    }

    /** Returns whether the frame with this timestamp should go to the model. */
    public boolean accept(long timestampNanos) {
        if (lastAccepted != Long.MIN_VALUE && timestampNanos - lastAccepted < periodNanos) {
            return false;
        }
        lastAccepted = timestampNanos;
        return true;
    }

    /** Forgets the last accepted frame (new source or clip). */
    public void reset() {
        lastAccepted = Long.MIN_VALUE;
    }
}
