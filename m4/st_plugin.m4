dnl SPDX-License-Identifier: MIT
dnl ST_PLUGIN(NAME, VAR, AUTO-AVAILABLE, LIBS-DESCRIPTION, HELP)
dnl One switch per plugin: --enable-NAME (error when its libraries are missing), --disable-NAME,
dnl or auto (on when its libraries were found). --enable-all-plugins / --disable-all-plugins set
dnl every plugin at once; the options are read left to right and, for each plugin, the last one
dnl that names it or all plugins wins: `--disable-all-plugins --enable-runtime-host` builds only
dnl runtime-host, `--enable-runtime-host --disable-all-plugins` builds none.
dnl Records a summary line for ST_PLUGIN_SUMMARY.

dnl ST_PLUGIN_ALL: the --enable-all-plugins switch and the shell function that finds, for one
dnl plugin, whether that switch comes after the plugin's own option on the command line.
AC_DEFUN([ST_PLUGIN_ALL], [
  AC_ARG_ENABLE([all-plugins],
    [AS_HELP_STRING([--enable-all-plugins],
      [build every plugin; a missing library is an error (--disable-all-plugins: none). Later
       --enable-NAME/--disable-NAME options change single plugins; the last option that names a
       plugin, or all of them, wins])],
    [AS_CASE(["$enableval"], [yes|no], [],
       [AC_MSG_ERROR([--enable-all-plugins=$enableval: the value must be yes or no])])])
  # st_plugin_all_last PLUGIN-VAR ARG...: sets st_all_choice to yes or no when the last option
  # among ARG... that concerns PLUGIN-VAR (its name with - + . as _, as autoconf spells
  # enable_VAR) is --enable-all-plugins or --disable-all-plugins; empty otherwise.
  st_plugin_all_last () {
    st_want=$[1]
    shift
    st_all_choice=
    for st_arg
    do
      case $st_arg in
        --enable-*|-enable-*|--disable-*|-disable-*) ;;
        *) continue ;;
      esac
      st_opt=${st_arg#-}
      st_opt=${st_opt#-}
      st_val=
      case $st_opt in
        *=*) st_val=${st_opt#*=}; st_opt=${st_opt%%=*} ;;
      esac
      case $st_opt in
        enable-*) st_opt=${st_opt#enable-}; test -n "$st_val" || st_val=yes ;;
        *) st_opt=${st_opt#disable-}; st_val=no ;;
      esac
      st_opt=`AS_ECHO(["$st_opt"]) | sed 's/[[-+.]]/_/g'`
      case $st_opt in
        all_plugins) st_all_choice=$st_val ;;
        "$st_want") st_all_choice= ;;
      esac
    done
  }
])

AC_DEFUN([ST_PLUGIN], [
  AC_REQUIRE([ST_PLUGIN_ALL])
  AC_ARG_ENABLE([$1], [AS_HELP_STRING([--enable-$1], [$5 (auto)])],
    [enable_$2=$enableval], [enable_$2=auto])
  st_how_$2=
  eval "st_plugin_all_last $2 $ac_configure_args"
  AS_IF([test -n "$st_all_choice"],
    [enable_$2=$st_all_choice
     AS_IF([test "x$st_all_choice" = xyes], [st_how_$2=" by --enable-all-plugins"],
       [st_how_$2=" by --disable-all-plugins"])])
  st_avail_$2="$3"
  AS_CASE(["$enable_$2"],
    [yes], [AS_IF([test "x$st_avail_$2" = xyes],
              [build_$2=yes; st_why_$2="enabled$st_how_$2"],
              [build_$2=no; st_why_$2="requested$st_how_$2 but $4 not found"; st_plugin_errors="$st_plugin_errors $1"])],
    [no],  [build_$2=no; st_why_$2="disabled$st_how_$2"],
           [AS_IF([test "x$st_avail_$2" = xyes],
              [build_$2=yes; st_why_$2="auto"],
              [build_$2=no; st_why_$2="$4 not found"])])
  AM_CONDITIONAL([BUILD_PLUGIN_]m4_toupper([$2]), [test "x$build_$2" = xyes])
  st_plugin_summary="$st_plugin_summary
    m4_format([%-24s], [$1]) $build_$2 ($st_why_$2)"
])

dnl ST_LIB_VERSION(LABEL, PKG-CONFIG-MODULE, FOUND): one line of the summary's library list, with
dnl the version pkg-config reports when FOUND is yes.
AC_DEFUN([ST_LIB_VERSION], [
  AS_IF([test "x$3" = xyes],
    [st_lib_version=`$PKG_CONFIG --modversion $2 2>/dev/null`],
    [st_lib_version="not found"])
  st_lib_summary="$st_lib_summary
    m4_format([%-24s], [$1]) $st_lib_version"
])

dnl ST_DIR_SUMMARY: the install directories, expanded (make's $(pkglibdir) is $libdir/PACKAGE).
AC_DEFUN([ST_DIR_SUMMARY], [
  st_dir_summary=`
    test "x$prefix" = xNONE && prefix=$ac_default_prefix
    test "x$exec_prefix" = xNONE && exec_prefix=$prefix
    pkglibdir='${libdir}/'$PACKAGE
    pkgdatadir='${datadir}/'$PACKAGE
    stconfig='${sysconfdir}/selftest/selftest.conf'
    for st_d in bindir sysconfdir stconfig pkglibdir pkgdatadir includedir pkgconfigdir mandir docdir \
                systemdsystemunitdir sysusersdir bashcompletiondir
    do
      eval "st_v=\\$$st_d"
      test -n "$st_v" || st_v="(not installed)"
      while :; do
        case $st_v in
          *'${'*) eval "st_v=\"$st_v\"" ;;
          *) break ;;
        esac
      done
      case $st_d in
        stconfig) st_d="config file" ;;
        pkglibdir) st_d="plugins (pkglibdir)" ;;
        pkgdatadir) st_d="data (pkgdatadir)" ;;
        systemdsystemunitdir) st_d="systemd units" ;;
        sysusersdir) st_d="sysusers.d" ;;
        bashcompletiondir) st_d="bash completion" ;;
      esac
      printf '\n    %-24s %s' "$st_d" "$st_v"
    done`
])

AC_DEFUN([ST_PLUGIN_SUMMARY], [
  ST_DIR_SUMMARY
  AC_MSG_NOTICE([
selftest-core $PACKAGE_VERSION configured
  prefix:        $prefix
  python:        $PYTHON
  unit tests:    $have_check
  werror:        $enable_werror
  sanitizers:    $enable_sanitizers
  libraries:$st_lib_summary
  install directories:$st_dir_summary
  plugins:$st_plugin_summary
])
  AS_IF([test -n "$st_plugin_errors"],
    [AC_MSG_ERROR([plugins requested but not buildable:$st_plugin_errors])])
])
