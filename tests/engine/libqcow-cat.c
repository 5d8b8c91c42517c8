/* libqcow-cat - second oracle for the engine tests: read a qcow2 chain
 * (FILE..., top first, all qcow2) with libqcow and write its bytes to
 * stdout. Exit 0, or 1 when libqcow refuses an image, 2 on bad usage.
 */
#include <libqcow.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	libqcow_file_t **files;
	libqcow_error_t *err = NULL;
	size64_t size = 0;
	off64_t off = 0;
	char *buf;
	int n = argc - 1, i;

	if (n < 1) {
		fprintf(stderr, "usage: libqcow-cat FILE... (top first)\n");
		return 2;
	}
	files = calloc((size_t)n, sizeof(*files));
	buf = malloc(1 << 20);
	if (!files || !buf)
		return 1;
	for (i = 0; i < n; i++) {
		if (libqcow_file_initialize(&files[i], &err) != 1 ||
		    libqcow_file_open(files[i], argv[i + 1], LIBQCOW_OPEN_READ, &err) != 1) {
			libqcow_error_fprint(err, stderr);
			return 1;
		}
	}
	for (i = 0; i + 1 < n; i++) {
		if (libqcow_file_set_parent_file(files[i], files[i + 1], &err) != 1) {
			libqcow_error_fprint(err, stderr);
			return 1;
		}
	}
	if (libqcow_file_get_media_size(files[0], &size, &err) != 1) {
		libqcow_error_fprint(err, stderr);
		return 1;
	}
	while ((size64_t)off < size) {
		size_t want = size - (size64_t)off < (1 << 20) ? (size_t)(size - (size64_t)off)
							       : (1 << 20);
		ssize_t r = libqcow_file_read_buffer_at_offset(files[0], buf, want, off, &err);

		if (r <= 0) {
			libqcow_error_fprint(err, stderr);
			return 1;
		}
		if (fwrite(buf, 1, (size_t)r, stdout) != (size_t)r)
			return 1;
		off += r;
	}
	for (i = 0; i < n; i++) {
		libqcow_file_close(files[i], NULL);
		libqcow_file_free(&files[i], NULL);
	}
	free(files);
	free(buf);
	return fflush(stdout) ? 1 : 0;
}
