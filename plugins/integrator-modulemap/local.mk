# integrator-modulemap: rules added with its code.
