/** The page's elements by id, and the one line where the app tells a person what went wrong. */
import { describeError } from "../../client/editErrors.js";

export const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/** Shows `error` in words a person can act on. */
export function showProblem(error: unknown): void {
  showProblemText(describeError(error));
  if (error instanceof Error) console.error(error);
}

export function showProblemText(text: string): void {
  const problem = $("problem");
  problem.textContent = text;
  problem.hidden = false;
}

export function clearProblem(): void {
  $("problem").hidden = true;
}
