package org.movinet.demo.core;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.Charset;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** The label file exported next to the model: one class name per line, UTF-8. */
public final class Labels {
    private Labels() {}

    /**
     * Reads the labels and checks there is one per model class.
     *
     * <p>Trailing blank lines are ignored; a blank line between labels is an error, since it
     * would shift every later class.
     *
     * @param in the label file (not closed).
     * @param numClasses the model's class count (logits width).
     * @throws IllegalArgumentException if the count differs or a line is blank.
     */
    public static List<String> read(InputStream in, int numClasses) throws IOException {
        BufferedReader reader =
                new BufferedReader(new InputStreamReader(in, Charset.forName("UTF-8")));
        List<String> lines = new ArrayList<String>();
        String line;
        while ((line = reader.readLine()) != null) {
            lines.add(line.trim());
        }
        int end = lines.size();
        while (end > 0 && lines.get(end - 1).isEmpty()) {
            end--;
        }
        List<String> labels = new ArrayList<String>(lines.subList(0, end));
        for (int i = 0; i < labels.size(); i++) {
            if (labels.get(i).isEmpty()) {
                throw new IllegalArgumentException("label file line " + (i + 1)
                        + " is blank, expected one class name per line");
            }
        }
        if (labels.size() != numClasses) {
            throw new IllegalArgumentException("label file has " + labels.size()
                    + " labels but the model has " + numClasses
                    + " classes; use the labels exported with this model");
        }
        return Collections.unmodifiableList(labels);
    }
}
