/**
 * The one translation of an edit's failure into an `EditError`: either retryable (the message
 * goes back to the queue) or permanent (the job fails with a reason a person reads).
 */
import { EditError, StoreUnavailableError } from "../events/errors.js";
import { InferenceError } from "../events/inferenceClient.js";

export function toEditError(error: unknown): EditError {
  if (error instanceof EditError) return error;
  if (error instanceof InferenceError) {
    return error.retryable
      ? new EditError("inference_unavailable", `The model server is unavailable (${error.code}); the edit will be retried.`, true)
      : new EditError("inference_failed", `The model could not process the image: ${error.message}`, false);
  }
  if (error instanceof StoreUnavailableError) {
    return new EditError("store_unavailable", "The job's record could not be updated in time; the edit will be retried.", true);
  }
  // Unknown errors are treated as passing faults: the attempt limit keeps them from looping.
  return new EditError("internal", "The edit failed unexpectedly; it will be retried.", true);
}
