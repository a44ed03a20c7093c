# runtime-podman: rules added with its code.
