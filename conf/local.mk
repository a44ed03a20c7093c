# Example configurations.
examplesdir = $(docdir)/examples
dist_examples_DATA = conf/selftest.conf
