# exporter-prometheus: rules added with its code.
