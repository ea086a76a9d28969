//! Step Functions `StartExecution` as it answers behind a gateway: the body is
//! validated as Step Functions does, names are unique (bounded memory), and
//! errors are 400 with `{"__type", "message"}`.
use std::collections::{HashSet, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::config::Access;
use super::Answer;

/// How many execution names are remembered for `ExecutionAlreadyExists`;
/// the oldest are forgotten first, so memory stays bounded.
const REMEMBERED_NAMES: usize = 200_000;

#[derive(Default)]
pub struct Executions {
    names: HashSet<String>,
    order: VecDeque<String>,
}

impl Executions {
    /// Records `name`; false if it was already used.
    fn claim(&mut self, name: &str) -> bool {
        if self.names.contains(name) {
            return false;
        }
        if self.order.len() >= REMEMBERED_NAMES {
            if let Some(oldest) = self.order.pop_front() {
                self.names.remove(&oldest);
            }
        }
        self.names.insert(name.to_string());
        self.order.push_back(name.to_string());
        true
    }
}

fn error(kind: &str, message: &str) -> Answer {
    Answer::json(400, json!({ "__type": kind, "message": message }))
}

/// `arn:aws:states:REGION:ACCOUNT:stateMachine:NAME` → (region, account, name).
fn parse_state_machine_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "states", region, account, "stateMachine", name]
            if partition.starts_with("aws")
                && !region.is_empty()
                && account.len() == 12
                && !name.is_empty() =>
        {
            Some((region, account, name))
        }
        _ => None,
    }
}

fn valid_name(name: &str) -> bool {
    (1..=80).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Starts an execution from a request body.
pub fn start(
    state_machines: &[String],
    access: Access,
    body: &[u8],
    executions: &mut Executions,
) -> Answer {
    if access == Access::Denied {
        return error(
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/apigateway-role is not authorized to perform: states:StartExecution",
        );
    }
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return error(
            "SerializationException",
            "the request body is not a JSON object",
        );
    };
    let arn = match request.get("stateMachineArn") {
        None | Some(Value::Null) => {
            return error(
                "ValidationException",
                "1 validation error detected: Value null at 'stateMachineArn' failed to satisfy constraint: Member must not be null",
            )
        }
        Some(Value::String(arn)) => arn.as_str(),
        Some(_) => return error("InvalidArn", "Invalid Arn: stateMachineArn must be a string"),
    };
    let Some((region, account, machine)) = parse_state_machine_arn(arn) else {
        return error(
            "InvalidArn",
            &format!("Invalid Arn: 'Resource type not valid in this context: {arn}'"),
        );
    };
    if !state_machines.iter().any(|known| known == arn) {
        return error(
            "StateMachineDoesNotExist",
            &format!("State Machine Does Not Exist: '{arn}'"),
        );
    }
    match request.get("input") {
        None => {}
        Some(Value::String(input)) if serde_json::from_str::<Value>(input).is_ok() => {}
        Some(_) => {
            return error(
                "InvalidExecutionInput",
                "Invalid State Machine Execution Input: input must be a JSON string",
            )
        }
    }
    let name = match request.get("name") {
        None => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(name)) if valid_name(name) => name.clone(),
        Some(_) => {
            return error(
                "InvalidName",
                "Invalid Name: must be 1-80 letters, digits, '-' or '_'",
            )
        }
    };
    if !executions.claim(&name) {
        return error(
            "ExecutionAlreadyExists",
            &format!("Execution Already Exists: '{name}'"),
        );
    }
    let start_date = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|t| t.as_secs_f64())
        .unwrap_or(0.0);
    Answer::json(
        200,
        json!({
            "executionArn": format!("arn:aws:states:{region}:{account}:execution:{machine}:{name}"),
            "startDate": start_date,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:HelloWorkflow";

    fn call(body: &str, access: Access, executions: &mut Executions) -> (u16, Value) {
        let answer = start(&[ARN.to_string()], access, body.as_bytes(), executions);
        (answer.status, serde_json::from_str(&answer.body).unwrap())
    }

    #[test]
    fn answers_like_step_functions() {
        let mut executions = Executions::default();
        let ok = format!(r#"{{"input":"{{}}","name":"run-1","stateMachineArn":"{ARN}"}}"#);
        let (status, body) = call(&ok, Access::Allowed, &mut executions);
        assert_eq!(status, 200);
        assert!(body["executionArn"]
            .as_str()
            .unwrap()
            .ends_with(":execution:HelloWorkflow:run-1"));
        assert!(body["startDate"].as_f64().unwrap() > 1.6e9);
        let cases = [
            (ok.clone(), "ExecutionAlreadyExists"),
            (
                r#"{"input":"{}","name":"a"}"#.to_string(),
                "ValidationException",
            ),
            (
                r#"{"name":"b","stateMachineArn":"arn:aws:lambda:x"}"#.to_string(),
                "InvalidArn",
            ),
            (
                format!(
                    r#"{{"name":"c","stateMachineArn":"{}"}}"#,
                    ARN.replace("HelloWorkflow", "Other")
                ),
                "StateMachineDoesNotExist",
            ),
            (
                format!(r#"{{"input":{{"a":1}},"name":"d","stateMachineArn":"{ARN}"}}"#),
                "InvalidExecutionInput",
            ),
            (
                format!(r#"{{"input":"not json","name":"e","stateMachineArn":"{ARN}"}}"#),
                "InvalidExecutionInput",
            ),
            (
                format!(r#"{{"name":"bad name!","stateMachineArn":"{ARN}"}}"#),
                "InvalidName",
            ),
            ("[1,2]".to_string(), "SerializationException"),
        ];
        for (body, kind) in cases {
            let (status, answer) = call(&body, Access::Allowed, &mut executions);
            assert_eq!(
                (status, answer["__type"].as_str().unwrap()),
                (400, kind),
                "{body}"
            );
        }
        let (status, answer) = call(&ok, Access::Denied, &mut executions);
        assert_eq!(
            (status, answer["__type"].as_str().unwrap()),
            (400, "AccessDeniedException")
        );
    }

    #[test]
    fn names_are_remembered_in_bounded_memory() {
        let mut executions = Executions::default();
        for index in 0..(REMEMBERED_NAMES + 10) {
            assert!(executions.claim(&format!("n{index}")));
        }
        assert_eq!(executions.names.len(), REMEMBERED_NAMES);
        assert!(executions.claim("n0"), "the oldest name was forgotten");
        assert!(!executions.claim("n100"));
    }
}
