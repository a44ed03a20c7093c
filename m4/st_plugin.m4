dnl SPDX-License-Identifier: MIT
dnl ST_PLUGIN(NAME, VAR, AUTO-AVAILABLE, LIBS-DESCRIPTION, HELP)
dnl One switch per plugin: --enable-NAME (error when its libraries are missing), --disable-NAME,
dnl or auto (on when its libraries were found). Records a summary line for ST_PLUGIN_SUMMARY.
AC_DEFUN([ST_PLUGIN], [
  AC_ARG_ENABLE([$1], [AS_HELP_STRING([--enable-$1], [$5 (auto)])],
    [enable_$2=$enableval], [enable_$2=auto])
  st_avail_$2="$3"
  AS_CASE(["$enable_$2"],
    [yes], [AS_IF([test "x$st_avail_$2" = xyes],
              [build_$2=yes; st_why_$2="enabled"],
              [build_$2=no; st_why_$2="requested but $4 not found"; st_plugin_errors="$st_plugin_errors $1"])],
    [no],  [build_$2=no; st_why_$2="disabled"],
           [AS_IF([test "x$st_avail_$2" = xyes],
              [build_$2=yes; st_why_$2="auto"],
              [build_$2=no; st_why_$2="$4 not found"])])
  AM_CONDITIONAL([BUILD_PLUGIN_]m4_toupper([$2]), [test "x$build_$2" = xyes])
  st_plugin_summary="$st_plugin_summary
    m4_format([%-24s], [$1]) $build_$2 ($st_why_$2)"
])

AC_DEFUN([ST_PLUGIN_SUMMARY], [
  AC_MSG_NOTICE([
selftest-core $PACKAGE_VERSION configured
  prefix:        $prefix
  python:        $PYTHON
  unit tests:    $have_check
  werror:        $enable_werror
  sanitizers:    $enable_sanitizers
  plugins:$st_plugin_summary
])
  AS_IF([test -n "$st_plugin_errors"],
    [AC_MSG_ERROR([plugins requested but not buildable:$st_plugin_errors])])
])
