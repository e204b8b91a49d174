package org.movinet.demo.core;

/** Frames per second over the last few events (a sliding window of timestamps). */
public final class RateMeter {
    private final long[] times;
    private int count;
    private int head;

    /** @param window number of timestamps kept, at least 2. */
    public RateMeter(int window) {
        if (window < 2) {
            throw new IllegalArgumentException("window is " + window + ", expected >= 2");
        }
        times = new long[window];
    }

    /** Records one event at {@code timestampNanos} (non-decreasing). */
    public synchronized void mark(long timestampNanos) {
        times[head] = timestampNanos;
        head = (head + 1) % times.length;
        count = Math.min(count + 1, times.length);
    }

    /** Events per second over the window, or 0 before two events. */
    public synchronized double fps() {
        if (count < 2) {
            return 0;
        }
        long newest = times[(head - 1 + times.length) % times.length];
        long oldest = times[(head - count + times.length) % times.length];
        return newest == oldest ? 0 : (count - 1) * 1e9 / (newest - oldest);
    }

    public synchronized void reset() {
        count = 0;
        head = 0;
    }
}
