package org.movinet.demo.core;

/**
 * Picks frames from a faster source at the model's frame rate (the rate it was trained at, from
 * its {@link InputContract}), e.g. 5 of a camera's 30 frames per second, or 12.5 on average for a
 * 12.5 fps model.
 *
 * <p>Frames are due on a fixed grid of one period; a frame is taken when it is at most
 * {@code tolerance} of a period early for the next due time. The grid advances by whole periods,
 * so the long-run rate is the model's even when the source rate is not a multiple of it. After a
 * stall of more than a period the grid restarts at the late frame (no burst to catch up).
 */
public final class FrameGate {
    private final long periodNanos;
    private final long earlyNanos;
    private long nextDue = Long.MIN_VALUE;

    /**
     * @param modelFps frames per second fed to the model, > 0.
     * @param tolerance fraction of a period a frame may come early and still be taken, in [0, 1),
     *     so a 30 fps camera feeds a 5 fps model every 6th frame despite jitter.
     */
    public FrameGate(double modelFps, double tolerance) {
        if (!(modelFps > 0) || Double.isInfinite(modelFps) || tolerance < 0 || tolerance >= 1) {
            throw new IllegalArgumentException("modelFps is " + modelFps + " and tolerance "
                    + tolerance + ", expected modelFps > 0 and tolerance in [0, 1)");
        }
        periodNanos = (long) (1e9 / modelFps);
        earlyNanos = (long) (periodNanos * tolerance);
    }

    /** Returns whether the frame with this timestamp should go to the model. */
    public boolean accept(long timestampNanos) {
        if (nextDue != Long.MIN_VALUE && timestampNanos < nextDue - earlyNanos) {
            return false;
        }
        if (nextDue == Long.MIN_VALUE || timestampNanos - nextDue >= periodNanos) {
            nextDue = timestampNanos;
        }
        nextDue += periodNanos;
        return true;
    }

    /** Forgets the grid (new source or clip). */
    public void reset() {
        nextDue = Long.MIN_VALUE;
    }
}
