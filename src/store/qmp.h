/* qmp.h - a client for the QEMU Machine Protocol (QMP) of the QEMU that
 * runs an attached volume.
 *
 * Each qmp_execute() connects to the monitor socket, reads the greeting,
 * negotiates capabilities, runs one command and disconnects: a QEMU
 * monitor serves one client at a time, so snapfs never holds it between
 * commands and long jobs are followed by polling (qmp_job_wait()).
 * Asynchronous events that arrive meanwhile are logged and skipped.
 *
 * Every step waits at most timeout_ms in all. A socket with no listener,
 * a closed connection, a timeout or a message that is not QMP gives -EIO
 * and a log line naming the socket; it never blocks longer. An error
 * reply gives -ENOENT for the class DeviceNotFound and -EIO otherwise,
 * with QEMU's description in the log.
 *
 * Thread-safe: calls are serialized by one process-wide lock (each call
 * is short; QEMU would queue a second connection anyway).
 */
#ifndef SNAPFS_QMP_H
#define SNAPFS_QMP_H

#include <jansson.h>

/* The longest socket path a sockaddr_un takes. */
#define QMP_SOCKET_PATH_MAX 107

/* Run command with arguments args (a JSON object, stolen; NULL for none)
 * on the QMP socket at path. On success, when ret is not NULL, *ret is a
 * new reference to the "return" value. Returns 0, -EIO, -ENOENT (see
 * above), -ENAMETOOLONG or -ENOMEM. */
int qmp_execute(const char *path, int timeout_ms, const char *command, json_t *args, json_t **ret);

/* Called with a job's progress in percent (0..99) while it runs. */
typedef void (*qmp_progress_fn)(int percent, void *arg);

/* Follow block job job_id (started with auto-dismiss false) until it
 * ends: poll query-jobs, report progress, complete the job when it is
 * ready (job-complete), dismiss it when it has concluded (job-dismiss).
 * Each poll is one qmp_execute() with timeout_ms; the job itself may take
 * as long as it needs. Returns 0 when it concluded without error, -EIO
 * when it failed (its error in the log) or QEMU stopped answering,
 * -ENOENT when QEMU has no job of that id. */
int qmp_job_wait(const char *path, int timeout_ms, const char *job_id, qmp_progress_fn progress,
		 void *arg);

#endif
