# discovery-python: rules added with its code.
