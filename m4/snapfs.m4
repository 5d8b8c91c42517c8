# SNAPFS_REQUIRE_PKG(VAR, MODULES, DEBIAN-PACKAGE)
# pkg-config check that stops configure with the package to install.
AC_DEFUN([SNAPFS_REQUIRE_PKG], [
  PKG_CHECK_MODULES([$1], [$2], [],
    [AC_MSG_ERROR([$2 not found: install $3 (apt-get install $3)])])
])

# SNAPFS_CHECK_LMDB
# LMDB ships a .pc file on Debian 12 but not everywhere: fall back to the
# header and library.
AC_DEFUN([SNAPFS_CHECK_LMDB], [
  PKG_CHECK_MODULES([LMDB], [lmdb >= 0.9.17], [], [
    AC_CHECK_HEADER([lmdb.h], [],
      [AC_MSG_ERROR([lmdb.h not found: install liblmdb-dev])])
    AC_CHECK_LIB([lmdb], [mdb_env_open], [LMDB_LIBS=-llmdb],
      [AC_MSG_ERROR([liblmdb not found: install liblmdb-dev])])
  ])
])

# SNAPFS_WARNINGS: -Wall -Wextra, and -Werror unless --disable-werror.
AC_DEFUN([SNAPFS_WARNINGS], [
  AC_ARG_ENABLE([werror],
    [AS_HELP_STRING([--disable-werror], [do not treat warnings as errors])],
    [], [enable_werror=yes])
  WARN_CFLAGS="-Wall -Wextra -Wshadow -Wformat=2 -Wno-unused-parameter"
  AS_IF([test "x$enable_werror" = xyes], [WARN_CFLAGS="$WARN_CFLAGS -Werror"])
  AC_SUBST([WARN_CFLAGS])
])

# SNAPFS_SANITIZERS: --enable-sanitizers builds everything with ASan+UBSan.
AC_DEFUN([SNAPFS_SANITIZERS], [
  AC_ARG_ENABLE([sanitizers],
    [AS_HELP_STRING([--enable-sanitizers], [build with AddressSanitizer and UndefinedBehaviorSanitizer])],
    [], [enable_sanitizers=no])
  SANITIZE_CFLAGS=""
  AS_IF([test "x$enable_sanitizers" = xyes],
    [SANITIZE_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"])
  AC_SUBST([SANITIZE_CFLAGS])
])

# SNAPFS_ARG_FAULT_INJECTION: --enable-fault-injection lets tests stop the daemon
# at named steps (SNAPFS_CRASH_AT=step) to check crash recovery.
AC_DEFUN([SNAPFS_ARG_FAULT_INJECTION], [
  AC_ARG_ENABLE([fault-injection],
    [AS_HELP_STRING([--enable-fault-injection], [crash points for recovery tests (never in production)])],
    [], [enable_fault_injection=no])
  AS_IF([test "x$enable_fault_injection" = xyes],
    [AC_DEFINE([SNAPFS_FAULT_INJECTION], [1], [Crash points enabled for tests])])
])
