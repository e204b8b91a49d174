package org.movinet.demo.core;

/** Softmax and top-k over a model's logits. */
public final class TopK {
    private TopK() {}

    /** Numerically stable softmax (max subtracted, sum in double). */
    public static float[] softmax(float[] logits) {
        if (logits.length == 0) {
            throw new IllegalArgumentException("logits is empty, expected at least one class");
        }
        float max = logits[0];
        for (float value : logits) {
            max = Math.max(max, value);
        }
        double[] exps = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < logits.length; i++) {
            exps[i] = Math.exp(logits[i] - max);
            sum += exps[i];
        }
        float[] probs = new float[logits.length];
        for (int i = 0; i < logits.length; i++) {
            probs[i] = (float) (exps[i] / sum);
        }
        return probs;
    }

    /**
     * Indices of the {@code k} largest scores, largest first; ties go to the lower index.
     * Returns min(k, scores.length) indices.
     */
    public static int[] topK(float[] scores, int k) {
        if (k < 0) {
            throw new IllegalArgumentException("k is " + k + ", expected >= 0");
        }
        int count = Math.min(k, scores.length);
        int[] best = new int[count];
        boolean[] taken = new boolean[scores.length];
        for (int rank = 0; rank < count; rank++) {
            int pick = -1;
            for (int i = 0; i < scores.length; i++) {
                if (!taken[i] && (pick < 0 || scores[i] > scores[pick])) {
                    pick = i;
                }
            }
            taken[pick] = true;
            best[rank] = pick;
        }
        return best;
    }

    /** Formats "label: 0.873" lines for the top {@code k} classes. */
    public static String describe(float[] probs, java.util.List<String> labels, int k) {
        StringBuilder text = new StringBuilder();
        for (int index : topK(probs, k)) {
            if (text.length() > 0) {
                text.append('\n');
            }
            text.append(labels.get(index)).append(": ")
                    .append(String.format(java.util.Locale.US, "%.3f", probs[index]));
        }
        return text.toString();
    }
}
