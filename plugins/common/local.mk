# common: rules added with its code.
