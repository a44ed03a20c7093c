# runtime-docker: rules added with its code.
