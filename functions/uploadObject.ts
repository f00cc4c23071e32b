/** Where a job's upload lands in the uploads bucket, and the way back from an object to its job. */

const PREFIX = "uploads/";
const UPLOAD_OBJECT = /^uploads\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

export function uploadObjectName(jobId: string): string {
  return `${PREFIX}${jobId}`;
}

/** The job an uploaded object belongs to; undefined for any other name (traversal included). */
export function jobIdOfUpload(object: string): string | undefined {
  return UPLOAD_OBJECT.exec(object)?.[1];
}
